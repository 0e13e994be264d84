"""What the Learner's callbacks cost: one epoch through `train` against the same epoch written as one plain loop
(the training loop as it was before the Learner), for vanilla and gradsim, interleaved in one run.

    python bench/bench_learner.py [--n 6400] [--rounds 7] [--threads 1]

Each round times one epoch of each route on the same synthetic data (set-up and a 1,000-image test included) and
checks that both routes end with identical weights. We report the median of the per-round ratios Learner / plain:
timings on a shared machine are noisy, ratios measured side by side much less so."""
import argparse, statistics, time, torch, torch.nn.functional as F
from gradsim_nb import GradSim, gradsim_weights
from gradsim_nb.data import NoisyData, add_label_noise, to_float, batch_indices, rng
from gradsim_nb.learner import LeNet5, accuracy, _ranking
from gradsim_nb.train import train


def data(n):
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, 10, (n,), generator=g)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return NoisyData(x, add_label_noise(true, 0.4), true, x[:1000], true[:1000])


def plain(d, rule):
    "The pre-Learner loop, inlined: one epoch; returns the model"
    torch.manual_seed(0)
    model, gen = LeNet5(), rng('batches', 0)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.85)
    state = {}
    def weigh(gram, labels):
        state['s'] = gradsim_weights(gram, 4.0, 4)
        return state['s']
    gs = GradSim(model, [model.fc3], 4.0, 4, weight_fn=weigh) if rule == 'gradsim' else None
    stats, loss_sum = [], 0.
    for idx in torch.cat(batch_indices(len(d.y), 128, gen)).split(128):
        yb = d.y[idx]
        losses = F.cross_entropy(model(to_float(d.x[idx])), yb, reduction='none')
        if gs is None: losses.mean().backward()
        else:
            w = gs.backward(losses, yb)
            stats.append(_ranking(state['s'], yb != d.true[idx], weights=w))
        opt.step(); opt.zero_grad(set_to_none=True)
        loss_sum += losses.detach().sum()
    sched.step()
    _ = loss_sum.item(), accuracy(model, d.x_test, d.y_test), torch.stack(stats).tolist() if stats else []
    if gs: gs.remove()
    return model


def learner(d, rule):
    torch.manual_seed(0)
    model = LeNet5()
    train(d, rule, epochs=1, model=model, progress=False)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=6400, help='training images (50 steps of 128)')
    p.add_argument('--rounds', type=int, default=7)
    p.add_argument('--threads', type=int, default=1, help="torch threads (the sweep's default is 1 per process)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    d = data(args.n)
    print(f'One epoch of {args.n:,} images (batch 128, {args.threads} threads), {args.rounds} interleaved rounds')
    print(f"{'rule':8} {'plain loop':>11} {'Learner':>9}   Learner / plain: median [min, max] of per-round ratios")
    for rule in ('vanilla', 'gradsim'):
        plain(d, rule); learner(d, rule)   # warm-up
        ratios, tp, tl = [], [], []
        for r in range(args.rounds):
            routes = [('plain', plain), ('learner', learner)][::1 if r % 2 else -1]   # alternate which goes first
            t, models = {}, {}
            for name, f in routes:
                t0 = time.perf_counter(); models[name] = f(d, rule); t[name] = time.perf_counter() - t0
            assert all(torch.equal(a, b) for a, b in zip(models['plain'].parameters(), models['learner'].parameters())), 'the routes differ'
            ratios.append(t['learner'] / t['plain']); tp.append(t['plain']); tl.append(t['learner'])
        print(f"{rule:8} {statistics.median(tp):10.3f}s {statistics.median(tl):8.3f}s   "
              f"{statistics.median(ratios):.3f}x [{min(ratios):.3f}, {max(ratios):.3f}]")
    print('both routes ended with identical weights in every round')


if __name__ == '__main__': main()
