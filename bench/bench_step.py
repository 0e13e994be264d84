"""Time one LeNet-5 training step (batch 128, Adam): vanilla against GradSim, interleaved in one run.

    python bench/bench_step.py [--steps 60] [--threads 2]

Timings on shared machines are noisy, so the routes take turns step by step and we report
ratios of medians measured in the same run, never absolute targets."""
import argparse, statistics, time, torch, torch.nn.functional as F
from gradsim_nb import GradSim
from gradsim_nb.learner import LeNet5


def make_steps(x, y):
    "One (name, model, step) per route, each with its own model and optimiser from the same seed"
    def build(layers_of=None):
        torch.manual_seed(0)
        model = LeNet5()
        gs = GradSim(model, layers_of(model)) if layers_of else None
        return model, torch.optim.Adam(model.parameters(), 1e-3), gs

    def vanilla(model, opt, _):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def gradsim(model, opt, gs):
        opt.zero_grad(set_to_none=True)
        gs.backward(F.cross_entropy(model(x), y, reduction='none'))
        opt.step()

    return [('vanilla', vanilla, build()),
            ('gradsim, last layer', gradsim, build(lambda m: [m.fc3])),
            ('gradsim, all layers', gradsim, build(lambda m: None))]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=60)
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 3, 32, 32, generator=g), torch.randint(0, 10, (128,), generator=g)
    routes = make_steps(x, y)
    times = {name: [] for name, *_ in routes}
    for i in range(args.steps + 5):
        for name, step, state in routes:
            t = time.perf_counter(); step(*state); dt = time.perf_counter() - t
            if i >= 5: times[name].append(dt)   # the first steps warm up allocators and caches
    print(f'LeNet-5, batch 128, {args.threads} threads, {args.steps} interleaved rounds of one step per route')
    print(f"{'route':22} {'median step':>11}   ratio to vanilla: median of per-round ratios [quartiles]")
    for name, ts in times.items():
        r = [t / v for t, v in zip(ts, times['vanilla'])]   # per round: a slow spell of the machine hits both
        q1, med, q3 = statistics.quantiles(r, n=4)
        print(f'{name:22} {1e3 * statistics.median(ts):8.2f} ms   {med:5.2f}x  [{q1:.2f}, {q3:.2f}]')


if __name__ == '__main__': main()
