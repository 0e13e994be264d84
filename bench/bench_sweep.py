"""Where a training epoch's time goes, and how to run a sweep fastest on this machine.

    python bench/bench_sweep.py [--steps 100]

1. Phases of a step (batch gather + uint8->float, forward, backward incl. weights, optimiser) for vanilla and
   gradsim (last layer), and one evaluation of the 10,000 test images, all timed in this run.
2. Sweep throughput: one process with all threads against one single-thread process per core side by side,
   running the same steps; the ratio decides how `gradsim-sweep --shard` should be used.
Synthetic uint8 data of CIFAR-10's shape: the timings do not depend on the pixel values."""
import argparse, os, subprocess, sys, time, torch, torch.nn.functional as F
from gradsim_nb import GradSim
from gradsim_nb.data import to_float, batch_indices, rng
from gradsim_nb.learner import LeNet5, accuracy

N_TRAIN, BS = 50000, 128


def phases(rule, steps):
    "Seconds per step in each phase, and for a whole epoch at this rate"
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (N_TRAIN, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (N_TRAIN,), generator=g)
    torch.manual_seed(0)
    model = LeNet5(); opt = torch.optim.Adam(model.parameters(), 1e-3)
    gs = GradSim(model, [model.fc3]) if rule == 'gradsim' else None
    t = dict(data=0., forward=0., backward=0., step=0.)
    for i, idx in enumerate(batch_indices(N_TRAIN, BS, rng('batches', 0))[:steps + 5]):
        t0 = time.perf_counter(); xb, yb = to_float(x[idx]), y[idx]
        t1 = time.perf_counter(); losses = F.cross_entropy(model(xb), yb, reduction='none')
        t2 = time.perf_counter()
        if gs: gs.backward(losses)
        else: losses.mean().backward()
        t3 = time.perf_counter(); opt.step(); opt.zero_grad(set_to_none=True); t4 = time.perf_counter()
        if i >= 5:   # warm-up steps excluded
            for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)): t[k] += dt / steps
    t0 = time.perf_counter(); accuracy(model, x[:10000], y[:10000]); t_eval = time.perf_counter() - t0
    return t, t_eval


def worker(threads, steps):
    "Run `steps` vanilla steps with `threads` threads; print steps per second"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = LeNet5(); opt = torch.optim.Adam(model.parameters(), 1e-3)
    xb, yb = torch.randn(BS, 3, 32, 32), torch.randint(0, 10, (BS,))
    for i in range(steps + 10):
        if i == 10: t0 = time.perf_counter()
        F.cross_entropy(model(xb), yb).backward(); opt.step(); opt.zero_grad()
    print(steps / (time.perf_counter() - t0))


def throughput(steps):
    "Total steps per second: one process with every thread, then one single-thread process per core at once"
    cmd = lambda th: [sys.executable, __file__, '--worker', str(th), '--steps', str(steps)]
    one = float(subprocess.run(cmd(os.cpu_count()), capture_output=True, text=True, check=True).stdout)
    procs = [subprocess.Popen(cmd(1), stdout=subprocess.PIPE, text=True) for _ in range(os.cpu_count())]
    many = sum(float(p.communicate()[0]) for p in procs)
    return one, many


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=100)
    p.add_argument('--worker', type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker: return worker(args.worker, args.steps)
    steps_per_epoch = -(-N_TRAIN // BS)
    print(f'1. One epoch of LeNet-5 on 50,000 images, batch 128, {torch.get_num_threads()} threads ({args.steps} timed steps)')
    print(f"{'rule':8} {'data':>7} {'forward':>8} {'backward':>9} {'step':>7}   {'epoch':>7} {'eval':>6}   runs/hour (30 epochs)")
    epochs = {}
    phases('vanilla', 20)   # warm up allocators and caches, so the first rule timed is not penalised
    for rule in ('vanilla', 'gradsim'):
        t, t_eval = phases(rule, args.steps)
        epochs[rule] = sum(t.values()) * steps_per_epoch + t_eval
        print(f"{rule:8} " + ' '.join(f'{1e3 * v:6.2f}ms'.rjust(8) for v in t.values()) +
              f"   {epochs[rule]:6.2f}s {t_eval:5.2f}s   {3600 / (30 * epochs[rule]):5.1f}")
    print(f"gradsim / vanilla per epoch: {epochs['gradsim'] / epochs['vanilla']:.2f}x")
    one, many = throughput(args.steps * 3)
    print(f'\n2. Sweep throughput, vanilla steps per second: one process with {os.cpu_count()} threads {one:.0f}, '
          f'{os.cpu_count()} single-thread processes side by side {many:.0f} in total: {many / one:.2f}x')


if __name__ == '__main__': main()
