"""Cost of an epoch of each weighting rule against vanilla's, through `train`, interleaved in one run.

    python bench/bench_rules.py [--n 6400] [--rounds 5] [--threads 1]

Each round trains one epoch of every rule on the same synthetic data (a 1,000-image test included), in a rotating order;
we report, per rule, the median over rounds of its time divided by vanilla's time in the same round."""
import argparse, statistics, time, torch
from gradsim_nb.data import NoisyData, add_label_noise
from gradsim_nb.train import train

RULES = {'vanilla': dict(rule='vanilla'), 'gradsim': dict(rule='gradsim'),
         'memory (soft)': dict(rule='agreement'), 'memory, mixture drop': dict(rule='agreement', select='mixture'),
         'small loss, mixture drop': dict(rule='small_loss', select='mixture')}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=6400, help='training images (50 steps of 128)')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--threads', type=int, default=1, help="torch threads (the sweep's default is 1 per process)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, 10, (args.n,), generator=g)
    x = torch.randint(0, 256, (args.n, 3, 32, 32), dtype=torch.uint8, generator=g)
    d = NoisyData(x, add_label_noise(true, 0.4), true, x[:1000], true[:1000])
    # two epochs, so the mixture rules fit their threshold once (at the second epoch's start); the ratio is per two epochs
    run = lambda kw: train(d, epochs=2, progress=False, **kw)
    for kw in RULES.values(): run(kw)   # warm-up
    names, ratios = list(RULES), {n: [] for n in RULES}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        t = {}
        for n in order:
            t0 = time.perf_counter(); run(RULES[n]); t[n] = time.perf_counter() - t0
        for n in names: ratios[n].append(t[n] / t['vanilla'])
    print(f'Two epochs of {args.n:,} images (batch 128, {args.threads} threads), {args.rounds} rounds in rotating order')
    print(f"{'rule':26} time / vanilla's: median [min, max] over rounds")
    for n in names: print(f'{n:26} {statistics.median(ratios[n]):.2f}x [{min(ratios[n]):.2f}, {max(ratios[n]):.2f}]')


if __name__ == '__main__': main()
