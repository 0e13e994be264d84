"""Golden numbers: every training option gives, epoch by epoch, the numbers the training loop gave before it became a Learner.

`tests/golden/train.json` was written by `python tests/test_golden.py --record` from the code before the redesign (issue 15).
On the machine and thread count that recorded it, every number must match exactly; elsewhere (another CPU, another torch)
float sums may round differently, so the test then asks for agreement to 1e-4 relative instead of bit-identity.
"""
import json, os, platform, sys
from pathlib import Path
import pytest, torch
from gradsim_nb.data import NoisyData, add_label_noise
from gradsim_nb.train import train, two_stage

GOLDEN = Path(__file__).parent / 'golden' / 'train.json'
G = dict(rule='gradsim')
CASES = {   # name: keyword arguments of train (or of two_stage / cleanlab_run, by 'fn')
    **{rule: dict(rule=rule) for rule in ('vanilla', 'oracle', 'gradsim', 'within_class', 'rank_drop', 'rectified_gaussian', 'uniform_random')},
    'gradsim last2': dict(G, layers='last2'), 'gradsim all': dict(G, layers='all'),
    'gradsim a8 k2': dict(G, a=8.0, k=2), 'gradsim k None': dict(G, k=None),
    'within_class k None': dict(rule='within_class', k=None),
    'rank_drop top 0.4': dict(rule='rank_drop', q=0.4, drop='top'), 'rank_drop last2': dict(rule='rank_drop', layers='last2'),
    **{f'{rule} + {loss}': dict(rule=rule, loss=loss) for loss in ('gce', 'sce', 'bootstrap', 'smooth')
       for rule in ('vanilla', 'gradsim', 'rectified_gaussian')},
    'gradsim relabel default': dict(G, relabel={}), 'gradsim relabel 1.5-1': dict(G, relabel=dict(margin=1.5, patience=1)),
    'vanilla relabel 1.5-1': dict(rule='vanilla', relabel=dict(margin=1.5, patience=1)),
    'gradsim tracked': dict(G, track=True), 'rank_drop tracked': dict(rule='rank_drop', track=True),
    'gradsim tracked relabel': dict(G, track=True, relabel=dict(margin=1.5, patience=1)),
    'gradsim bs 50 (ragged last batch)': dict(G, bs=50), 'vanilla lr gamma': dict(rule='vanilla', lr=3e-3, gamma=0.5),
    'twostage finetune': dict(fn='two_stage', mode='finetune'), 'twostage scratch': dict(fn='two_stage', mode='scratch'),
    'cleanlab': dict(fn='cleanlab', folds=2),
}


GRADSIM_ONLY = ('layers', 'a', 'k', 'q', 'drop', 'relabel', 'loss')


def toy(n=1024, seed=0):
    "Learnable synthetic images (class shifts the brightness) with 40% symmetric noise: no data set needed"
    g = torch.Generator().manual_seed(seed)
    true = torch.randint(0, 10, (n,), generator=g)
    x = (torch.rand(n, 3, 32, 32, generator=g) * 60 + true.view(-1, 1, 1, 1) * 19).to(torch.uint8)
    xt = (torch.rand(256, 3, 32, 32, generator=g) * 60).to(torch.uint8)
    yt = torch.randint(0, 10, (256,), generator=g)
    return NoisyData(x, add_label_noise(true, 0.4, seed=seed), true, (xt + yt.view(-1, 1, 1, 1) * 19).to(torch.uint8), yt)


def run(case):
    kw = dict(CASES[case])
    fn = kw.pop('fn', 'train')
    common = dict(epochs=3, seed=3, progress=False)
    if fn == 'two_stage': return two_stage(toy(), epochs=2, seed=3, progress=False, bs=64, **kw)
    if fn == 'cleanlab':
        pytest.importorskip('cleanlab')
        from gradsim_nb.cleanlab_baseline import cleanlab_run
        return cleanlab_run(toy(), epochs=2, seed=3, progress=False, **kw)
    return train(toy(), **{'bs': 64, **common, **kw})


def strip(h):
    "The history without wall times"
    h = json.loads(json.dumps(h))   # as saved: tuples become lists
    for e in h['epochs']:
        for key in ('seconds', 'memorised', 'fit_clean'): e.pop(key, None)   # wall time; the memorisation shares came later (notebook 29)
    h['config'].pop('model', None)   # named since notebook 29: always LeNet-5 here
    return h


def fingerprint():
    cpu = next((l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('model name')), '') \
        if Path('/proc/cpuinfo').exists() else platform.processor()
    return dict(torch=torch.__version__, threads=torch.get_num_threads(), cpu=cpu, machine=platform.machine())


def close(a, b):
    "Structural equality with floats to 1e-4 relative"
    if isinstance(a, float) or isinstance(b, float):
        if a != a and b != b: return True   # both NaN (an AUROC over a batch without flips)
        return abs(a - b) <= 1e-4 * max(abs(a), abs(b), 1e-3)
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list): return isinstance(b, list) and len(a) == len(b) and all(map(close, a, b))
    return a == b


@pytest.fixture(scope='module')
def golden():
    if not GOLDEN.exists(): pytest.fail(f'{GOLDEN} is missing: it is committed with the tests (python tests/test_golden.py --record wrote it)')
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize('case', list(CASES))
def test_same_numbers_as_before_the_redesign(case, golden):
    n = torch.get_num_threads()
    torch.set_num_threads(golden['fingerprint']['threads'])
    try: h = strip(run(case))
    finally: torch.set_num_threads(n)
    want = golden['runs'][case]
    if case == 'cleanlab':   # its folds are plain Learner runs now: the config no longer carries gradsim settings they never used
        want = {**want, 'config': {k: v for k, v in want['config'].items() if k not in GRADSIM_ONLY}}
    if golden['fingerprint'] == fingerprint(): assert h == want   # the recording machine: bit-identical
    else: assert close(h, want), f'{case}: differs from the golden run beyond 1e-4'


def test_the_cases_do_what_they_claim(golden):
    "The golden runs exercise each feature: relabelling changes labels, tracking keeps weights, two-stage drops examples"
    r = golden['runs']
    assert r['gradsim relabel 1.5-1']['relabels'] and r['gradsim relabel 1.5-1']['epochs'][-1]['relabelled'] > 0
    assert len(r['gradsim tracked']['example_weight']) == 1024 and len(r['rank_drop tracked']['example_weight']) == 1024
    assert 0 < r['twostage finetune']['config']['kept'] < 1024
    assert len(r['cleanlab']['example_suspicion']) == 1024
    accs = {json.dumps([e['test_acc'] for e in h['epochs']]) for h in r.values()}
    assert len(accs) > len(r) // 2   # the options really change the runs


if __name__ == '__main__' and sys.argv[1:] == ['--record']:
    torch.set_num_threads(2)
    runs = {case: strip(run(case)) for case in CASES}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({'fingerprint': fingerprint(), 'runs': runs}, indent=0))
    print(f'wrote {GOLDEN}: {len(runs)} runs')
