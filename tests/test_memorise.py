"Notebook 29 and the options around it: memorisation is measured without changing a run, co-teaching and early stopping do what they say, warm-up works for every gradient rule, and an option a rule would ignore is an error"
import math, pytest, torch
from gradsim_nb.data import NoisyData, add_label_noise
from gradsim_nb.train import train
from gradsim_nb.runs import run_name
from gradsim_nb.memorise import memorised_shares, holdout_split, forget_rate, wrong_share, make_model, peer_of, WideCNN


def toy(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    true = torch.randint(0, 10, (n,), generator=g)
    x = (torch.rand(n, 3, 32, 32, generator=g) * 60 + true.view(-1, 1, 1, 1) * 19).to(torch.uint8)   # learnable
    return NoisyData(x, add_label_noise(true, 0.4, seed=seed), true, x[:64], true[:64])


def numbers(h, keys=('test_acc', 'train_loss')): return [[e[k] for k in keys] for e in h['epochs']]


def test_memorised_shares_by_hand():
    given, true, pred = torch.tensor([3, 1, 4, 0, 2, 5]), torch.tensor([0, 0, 0, 0, 2, 5]), torch.tensor([3, 0, 0, 0, 2, 1])
    assert memorised_shares(pred, given, true) == pytest.approx((1 / 3, 2 / 3))
    assert math.isnan(memorised_shares(pred, true, true)[0])


def test_measuring_memorisation_changes_nothing():
    d = toy()
    on, off = (train(d, 'gradsim', epochs=2, bs=32, progress=False, memorisation=m) for m in (True, False))
    assert numbers(on) == numbers(off)
    assert all(0 <= e['memorised'] <= 1 for e in on['epochs']) and 'memorised' not in off['epochs'][0]


def test_memorised_share_counts_flipped_examples_fitted():
    "On 64 images of pure noise a wrong label can only be fitted by memorising it: trained long, the network does"
    g = torch.Generator().manual_seed(0)
    x, true = torch.randint(0, 256, (64, 3, 32, 32), generator=g, dtype=torch.uint8), torch.randint(0, 10, (64,), generator=g)
    d = NoisyData(x, add_label_noise(true, 0.5, seed=0), true, x[:16], true[:16])
    h = train(d, 'vanilla', epochs=60, bs=16, lr=3e-3, gamma=1.0, progress=False)
    assert h['epochs'][0]['memorised'] < 0.3 and h['epochs'][-1]['memorised'] > 0.9


def test_warmup_for_gradsim_is_plain_then_gradsim():
    d = toy()
    van = train(d, 'vanilla', epochs=1, bs=32, progress=False)
    w = train(d, 'gradsim', epochs=2, bs=32, warmup=1, progress=False)
    g = train(d, 'gradsim', epochs=2, bs=32, progress=False)
    assert numbers(w)[0] == numbers(van)[0]                  # epoch 1: the plain step, bit for bit
    assert numbers(w)[1] != numbers(g)[1] and 'auroc' in w['epochs'][1] and 'auroc' not in w['epochs'][0]
    assert w['config']['warmup'] == 1
    assert run_name(dict(rule='gradsim', warmup=5), 0) != run_name(dict(rule='gradsim'), 0)
    with pytest.raises(ValueError, match='warmup: 2 plain epochs of 2'): train(d, 'gradsim', epochs=2, warmup=2, progress=False)
    with pytest.raises(ValueError, match='warmup: 3 plain epochs of 2'): train(d, 'agreement', epochs=2, warmup=3, progress=False)


@pytest.mark.parametrize('rule, opt', [('gradsim', dict(decay=0.5)), ('gradsim', dict(select='mixture')), ('vanilla', dict(warmup=5)),
                                       ('vanilla', dict(a=8.0)), ('oracle', dict(k=2)), ('gradsim', dict(q=0.4)), ('small_loss', dict(layers='all')),
                                       ('coteaching', dict(drop='top'))])
def test_an_option_the_rule_ignores_is_an_error(rule, opt):
    [(name, _)] = opt.items()
    with pytest.raises(ValueError, match=f'^{name}: rule {rule!r} does not use it'): train(toy(), rule, epochs=1, progress=False, **opt)


def test_agreement_without_memory_tracks_gradsims_weights():
    "decay=0 trains like gradsim, so the tracker must keep the same per-example weights (not m times them)"
    d = toy(200)   # 200 = 6 batches of 32 and one of 8: a smaller last batch
    g = train(d, 'gradsim', epochs=2, bs=32, track=True, progress=False)
    a = train(d, 'agreement', epochs=2, bs=32, decay=0.0, track=True, progress=False)
    torch.testing.assert_close(torch.tensor(a['example_weight']), torch.tensor(g['example_weight']), atol=1e-4, rtol=1e-4)
    assert 0.5 < sum(g['example_weight']) / 200 < 1.5


def test_coteaching_at_forget_rate_zero_steps_like_vanilla():
    "In the first epoch the forget rate is 0, so the first network takes vanilla's steps"
    d = toy()
    van = train(d, 'vanilla', epochs=1, bs=32, progress=False, memorisation=False)
    co = train(d, 'coteaching', epochs=2, bs=32, progress=False, memorisation=False)
    assert co['epochs'][0]['test_acc'] == van['epochs'][0]['test_acc']
    assert co['epochs'][0]['train_loss'] == pytest.approx(van['epochs'][0]['train_loss'], rel=1e-5)
    e1, e2 = co['epochs']
    assert e1['forget_rate'] == 0 and e2['forget_rate'] == pytest.approx(e1['tau_estimate'] / 10)


def test_forget_rate_and_noise_estimate():
    assert [forget_rate(t, 0.4) for t in (1, 6, 11, 50)] == pytest.approx([0, 0.2, 0.4, 0.4])
    g = torch.Generator().manual_seed(1)
    losses = torch.cat([0.3 * torch.rand(700, generator=g), 2 + torch.rand(300, generator=g)])
    assert wrong_share(losses) == pytest.approx(0.3, abs=0.02)


def test_peer_is_a_fresh_network_of_the_same_shape():
    torch.manual_seed(0)
    m = WideCNN(); p = peer_of(m)
    assert [q.shape for q in p.parameters()] == [q.shape for q in m.parameters()]
    assert not any(torch.equal(a, b) for a, b in zip(p.parameters(), m.parameters()))


def test_early_stopping_holds_out_a_tenth_and_picks_the_best_held_out_epoch():
    d = toy(300)
    fit, held = holdout_split(d)
    assert len(fit.y) == 270 and len(held.y) == 30 and not set(fit.x[:, 0, 0, 0].tolist()) is None
    h = train(d, 'early_stop', epochs=3, bs=32, progress=False)
    best = max(h['epochs'], key=lambda e: e['holdout_acc'])
    assert h['config']['n_train'] == 270 and h['early_stop'] == {k: best[k] for k in ('epoch', 'holdout_acc', 'test_acc')}


def test_models_by_name_and_their_run_names():
    d = toy()
    h = train(d, 'vanilla', epochs=1, bs=64, model='wide_cnn', progress=False)
    assert h['config']['model'] == 'wide_cnn'
    with pytest.raises(ValueError, match='model: unknown network'): train(d, 'vanilla', model='resnet', progress=False)
    assert run_name(dict(rule='gradsim'), 0) == 'gradsim_symmetric0.4_e30_layerslast_a4_k4_seed0.json'   # the thesis's runs keep their names
    assert run_name(dict(rule='vanilla', gamma=1), 0) == run_name(dict(rule='vanilla', gamma=1.0), 0) == 'vanilla_symmetric0.4_e30_gamma1.0_seed0.json'
    assert run_name(dict(rule='vanilla', model='wide_cnn'), 0) == 'vanilla_symmetric0.4_e30_wide_cnn_seed0.json'
    assert run_name(dict(rule='vanilla', gamma=0.8500001), 0) != run_name(dict(rule='vanilla'), 0)
