"""Table 1's 15 runs (vanilla, oracle, gradsim x 5 seeds, 30 epochs) from scratch with gradsim-sweep's defaults: wall time,
gradsim's cost per run against vanilla's, and whether every run gives the committed run's numbers.

    python bench/bench_table1.py [--data ../shared/data/cifar10-jpeg.tar.gz] [-- extra gradsim-sweep arguments, e.g. --jobs 1 --threads 1]

Trains into a temporary folder (about 20 minutes on a 2-core CPU), so results/runs/ is never touched.
Compares test accuracies and last-5 with results/runs/: the committed runs were trained with one thread per process, and
exact numbers depend on the thread count, so compare with --threads 1 (the default when runs go side by side)."""
import argparse, json, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', help='passed on to gradsim-sweep (default: $GRADSIM_DATA)')
    p.add_argument('extra', nargs='*', help='more gradsim-sweep arguments, e.g. --jobs 1 --threads 1')
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, '-c', 'from gradsim_nb.sweep import sweep; sweep()', 'table1', '--out', out] + (['--data', args.data] if args.data else []) + args.extra
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
        runs = {f.name: json.loads(f.read_text()) for f in Path(out).glob('*.json')}
    secs = {}
    for h in runs.values(): secs.setdefault(h['config']['rule'], []).append(sum(e['seconds'] for e in h['epochs']) / len(h['epochs']))
    ref = {n: json.loads((ROOT / 'results' / 'runs' / n).read_text()) for n in runs if (ROOT / 'results' / 'runs' / n).exists()}
    same = sum([e['test_acc'] for e in h['epochs']] == [e['test_acc'] for e in ref[n]['epochs']] and h['last5'] == ref[n]['last5']
               for n, h in runs.items() if n in ref)
    print(f"\nTable 1, {len(runs)} runs: {wall / 60:.1f} min wall ({' '.join(args.extra) or 'gradsim-sweep defaults'})")
    for rule, s in secs.items(): print(f'  {rule:8} {statistics.mean(s):.2f} s per epoch (mean of {len(s)} runs)')
    print(f"  gradsim / vanilla per run: {statistics.mean(secs['gradsim']) / statistics.mean(secs['vanilla']):.2f}x")
    print(f'  identical test accuracies and last-5 to the committed run: {same} of {len(ref)} runs committed in results/runs/')


if __name__ == '__main__': main()
