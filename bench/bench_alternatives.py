"""Faster ways to train LeNet-5 on a CPU that the sweep could use, measured against the plain step, and whether each is exact.

    python bench/bench_alternatives.py [--steps 40] [--threads 1]

Routes (vanilla steps, batch 128, Adam; the routes take turns step by step, as in bench_step.py):
  plain          the step `train` takes
  channels_last  model and batch in NHWC memory layout
  compiled       torch.compile of the model (forward and backward; the first calls compile, excluded)
  vmap x S       S seeds' models stacked (torch.func.stack_module_state) and stepped as one; time per model
Exactness: after the same steps on the same batches, the largest parameter difference from the plain route
(0 means bit-identical; the sweep keeps only exact routes, because a run's numbers must not depend on how it was run)."""
import argparse, copy, statistics, time, torch, torch.nn.functional as F
from torch.func import functional_call, stack_module_state
from gradsim_nb.learner import LeNet5


def plain_route(x, y, layout=None, compile_=False):
    torch.manual_seed(0)
    model = LeNet5()
    if layout: model = model.to(memory_format=layout); x = x.contiguous(memory_format=layout)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    fwd = torch.compile(model) if compile_ else model
    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(fwd(x), y).backward()
        opt.step()
    return step, lambda: [p.detach() for p in model.parameters()]


def vmap_route(x, y, seeds):
    models = []
    for s in range(seeds): torch.manual_seed(s); models.append(LeNet5())
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to('meta')
    opt = torch.optim.Adam(params.values(), 1e-3)   # elementwise: one Adam on stacked tensors = one Adam per model
    call = lambda p, b, xb: functional_call(base, (p, b), (xb,))
    def step():
        opt.zero_grad(set_to_none=True)
        logits = torch.vmap(call, in_dims=(0, 0, None))(params, buffers, x)          # (seeds, batch, classes)
        F.cross_entropy(logits.flatten(0, 1), y.repeat(seeds), reduction='sum').div(len(y)).backward()   # each model its own mean
        opt.step()
    return step, lambda: [p[0].detach() for p in params.values()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=40)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seeds', type=int, default=4, help='models stacked by the vmap route')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 3, 32, 32, generator=g), torch.randint(0, 10, (128,), generator=g)
    routes = {'plain': plain_route(x, y), 'channels_last': plain_route(x, y, torch.channels_last),
              'compiled': plain_route(x, y, compile_=True), f'vmap x {args.seeds}': vmap_route(x, y, args.seeds)}
    per_model = {name: args.seeds if name.startswith('vmap') else 1 for name in routes}
    t0 = time.perf_counter(); routes['compiled'][0](); compile_s = time.perf_counter() - t0
    for name, (step, _) in routes.items():
        if name != 'compiled': step()   # every route has taken one step before timing
    times = {name: [] for name in routes}
    for i in range(args.steps + 3):
        for name, (step, _) in routes.items():
            t = time.perf_counter(); step(); dt = time.perf_counter() - t
            if i >= 3: times[name].append(dt / per_model[name])
    ref = routes['plain'][1]()
    print(f'LeNet-5 vanilla steps, batch 128, {args.threads} thread(s), {args.steps} interleaved rounds (compiling took {compile_s:.0f} s)')
    print(f"{'route':14} {'ms per model-step':>17}   {'ratio to plain':>14}   max |param - plain's| after {args.steps + 4} steps")
    for name, ts in times.items():
        r = statistics.median(t / v for t, v in zip(ts, times['plain']))
        diff = max((a - b).abs().max().item() for a, b in zip(routes[name][1](), ref))
        print(f'{name:14} {1e3 * statistics.median(ts):17.2f}   {r:13.2f}x   {diff:.1e}' + ('  (exact)' if diff == 0 else ''))


if __name__ == '__main__': main()
