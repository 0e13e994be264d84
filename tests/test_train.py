"The training loop: every rule runs, a seed fixes the run, histories round-trip"
import pytest, torch
from gradsim_nb.data import NoisyData, add_label_noise
from gradsim_nb.train import train
from gradsim_nb.learner import RULES, save_history, load_history


def toy(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    true = torch.randint(0, 10, (n,), generator=g)
    x = (torch.rand(n, 3, 32, 32, generator=g) * 60 + true.view(-1, 1, 1, 1) * 19).to(torch.uint8)   # learnable
    return NoisyData(x, add_label_noise(true, 0.4, seed=seed), true, x[:64], true[:64])


@pytest.mark.parametrize('rule', RULES)
def test_every_rule_runs_and_is_reproducible(rule):
    d = toy()
    h1, h2 = (train(d, rule, epochs=2, bs=32, seed=5, progress=False) for _ in range(2))
    assert [e['test_acc'] for e in h1['epochs']] == [e['test_acc'] for e in h2['epochs']]
    assert [e['train_loss'] for e in h1['epochs']] == [e['train_loss'] for e in h2['epochs']]
    assert h1['config']['noise'] == 102 / 256 and len(h1['epochs']) == 2
    has_rank = rule in ('gradsim', 'within_class', 'rank_drop')
    assert ('auroc' in h1['epochs'][0]) == has_rank


def test_gradsim_differs_from_vanilla_and_a0_equals_vanilla():
    d = toy()
    van = train(d, 'vanilla', epochs=1, bs=32, progress=False)
    a0 = train(d, 'gradsim', epochs=1, bs=32, a=0., progress=False)
    gs = train(d, 'gradsim', epochs=1, bs=32, progress=False)
    assert abs(van['epochs'][0]['train_loss'] - a0['epochs'][0]['train_loss']) < 1e-5
    assert gs['epochs'][0]['train_loss'] != van['epochs'][0]['train_loss']


def test_history_round_trip(tmp_path):
    h = train(toy(), 'oracle', epochs=1, bs=64, progress=False)
    save_history(h, tmp_path / 'r' / 'h.json')
    assert load_history(tmp_path / 'r' / 'h.json') == h and not list((tmp_path / 'r').glob('*.tmp'))


def test_bad_rule_and_layers():
    with pytest.raises(ValueError, match='rule: unknown'): train(toy(), 'mean')
    with pytest.raises(ValueError, match='layers: expected one of'): train(toy(), 'gradsim', layers='first')


@pytest.mark.parametrize('loss', ['gce', 'sce', 'bootstrap', 'smooth'])
def test_robust_losses_train_with_any_rule(loss):
    d = toy()
    for rule in ('vanilla', 'gradsim'):
        h = train(d, rule, epochs=1, bs=32, loss=loss, progress=False)
        assert h['config']['loss'] == loss and h['epochs'][0]['train_loss'] > 0
    ce = train(d, 'vanilla', epochs=1, bs=32, progress=False)
    assert h['epochs'][0]['train_loss'] != ce['epochs'][0]['train_loss']


def test_bad_loss():
    with pytest.raises(ValueError, match='loss: unknown'): train(toy(), 'vanilla', epochs=1, loss='mae', progress=False)
    with pytest.raises(ValueError, match='cross-entropy'): train(toy(), 'gradsim', epochs=1, loss='gce', relabel={}, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
@pytest.mark.parametrize('kw', [dict(rule='vanilla'), dict(rule='gradsim'), dict(rule='rank_drop'), dict(rule='rectified_gaussian'),
                                dict(rule='gradsim', relabel={}), dict(rule='gradsim', track=True)])
def test_a_gpu_step_never_waits_for_the_device(kw):
    "Under CUDA's sync debug mode an epoch of 32 steps synchronises as often as one of 16: only at set-up and at the epoch's end"
    import warnings
    def syncs(bs):
        torch.cuda.set_sync_debug_mode('warn')
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                train(toy(), epochs=1, bs=bs, device='cuda', progress=False, **kw)
        finally: torch.cuda.set_sync_debug_mode(0)
        return sum('synchroniz' in str(w.message) for w in caught)
    few, many = syncs(16), syncs(8)
    assert many == few, (few, many)
