"""Cost of an epoch of each schedule of notebook 27 against vanilla's, through `train`, interleaved in one run.

    python bench/bench_rules.py [--n 6400] [--rounds 5] [--threads 1]

The schedules are those of the `memory` experiment, taken from its registry so the labels cannot drift. Each is timed as it
runs after its warm-up (a warm-up epoch is a vanilla epoch); a filter-then-fine-tune schedule is timed by its first stage
(its fine-tune is vanilla on the examples kept, so at most a vanilla epoch). Each round trains two epochs of every schedule
on the same synthetic data (a 1,000-image test included), in a rotating order; we report, per schedule, the median over
rounds of its time divided by vanilla's time in the same round."""
import argparse, statistics, time, torch
from gradsim_nb.data import NoisyData, add_label_noise
from gradsim_nb.experiments import EXPERIMENTS
from gradsim_nb.train import train, STAGED, FIRST_STAGE


def train_kwargs(label, cfg):
    "What `train` is given to time schedule `label` of the `memory` experiment"
    if cfg['rule'] in STAGED: return FIRST_STAGE[cfg['rule'].split('_')[0]]   # e.g. 'loss_finetune': the loss filter's first stage
    return {k: v for k, v in cfg.items() if k != 'epochs'} | ({'warmup': 0} if 'warmup' in cfg else {})


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=6400, help='training images (50 steps of 128)')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--threads', type=int, default=1, help="torch threads (the sweep's default is 1 per process)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    runs = {(f'{l}, first stage' if c['rule'] in STAGED else l): train_kwargs(l, c) for l, c in EXPERIMENTS['memory']['runs'].items()}
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, 10, (args.n,), generator=g)
    x = torch.randint(0, 256, (args.n, 3, 32, 32), dtype=torch.uint8, generator=g)
    d = NoisyData(x, add_label_noise(true, 0.4), true, x[:1000], true[:1000])
    # two epochs, so the mixture rules fit their threshold once (at the second epoch's start); the ratio is per two epochs
    run = lambda kw: train(d, epochs=2, progress=False, **kw)
    for kw in runs.values(): run(kw)   # warm-up
    names, ratios = list(runs), {n: [] for n in runs}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        t = {}
        for n in order:
            t0 = time.perf_counter(); run(runs[n]); t[n] = time.perf_counter() - t0
        for n in names: ratios[n].append(t[n] / t['vanilla'])
    w = max(map(len, names)) + 2
    print(f'Two epochs of {args.n:,} images (batch 128, {args.threads} threads), {args.rounds} rounds in rotating order; '
          'each schedule after its warm-up, each filter by its first stage')
    print(f"{'schedule':{w}}time / vanilla's: median [min, max] over rounds")
    for n in names: print(f'{n:{w}}{statistics.median(ratios[n]):.2f}x [{min(ratios[n]):.2f}, {max(ratios[n]):.2f}]')


if __name__ == '__main__': main()
