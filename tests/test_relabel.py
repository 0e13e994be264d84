"Hypothetical-label scores against explicit gradients, the relabelling rule, and relabelling inside train()"
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from gradsim_nb.relabel import label_scores, Relabeller
from gradsim_nb.weights import gradsim_weights
from gradsim_nb.pergrad import per_example_gram
from gradsim_nb.train import train
from gradsim_nb.runs import run_name
from test_train import toy


def explicit_scores(fc, x, y, a, k):
    "Every g_i(c) by its own backward pass, cosines with the g_j under the given labels, top-k sum"
    def grad(i, c):
        fc.zero_grad(); F.cross_entropy(fc(x[i:i + 1]), torch.tensor([c])).backward()
        return torch.cat([fc.weight.grad.flatten(), fc.bias.grad])
    m, C = len(y), fc.out_features
    G = torch.stack([grad(j, int(y[j])) for j in range(m)])
    out = torch.zeros(m, C, dtype=torch.float64)
    for i in range(m):
        for c in range(C):
            cos = torch.stack([F.cosine_similarity(grad(i, c), G[j], 0) for j in range(m) if j != i])
            out[i, c] = torch.exp(a * cos).topk(min(k, m - 1)).values.sum()
    return out


@pytest.mark.parametrize('a,k', [(4.0, 4), (1.0, 1), (8.0, 20)])
def test_scores_match_explicit_gradients_and_gradsim(a, k):
    torch.manual_seed(1)
    fc = nn.Linear(6, 4).double()
    x, y = torch.randn(9, 6, dtype=torch.float64).relu(), torch.randint(0, 4, (9,))
    with torch.no_grad(): s = label_scores(x, fc(x).softmax(1), y, a, k)
    assert torch.allclose(s, explicit_scores(fc, x, y, a, k), rtol=1e-9)
    own = s.gather(1, y[:, None]).squeeze(1)
    assert torch.allclose(own / own.sum(), gradsim_weights(per_example_gram(fc, x, y), a, k), rtol=1e-9)


def test_confident_model_keeps_float32_precision():
    "p close to one-hot: the closed form must not cancel to a zero norm"
    torch.manual_seed(0)
    fc = nn.Linear(5, 3)
    with torch.no_grad(): fc.weight.mul_(40)
    x = torch.randn(8, 5).relu()
    y = fc(x).argmax(1)
    with torch.no_grad(): s32 = label_scores(x, fc(x).softmax(1), y)
    fc64 = fc.double()
    with torch.no_grad(): s64 = label_scores(x.double(), fc64(x.double()).softmax(1), y)
    assert torch.allclose(s32.double(), s64, rtol=1e-3)


def test_rule_relabels_after_patience_and_logs():
    lin = nn.Linear(2, 2)
    with torch.no_grad(): lin.weight.copy_(torch.tensor([[3., -3.], [-3., 3.]])); lin.bias.zero_()
    true = torch.tensor([0] * 5 + [1] * 5)
    feats = torch.where(true[:, None] == 0, torch.tensor([2., 0.]), torch.tensor([0., 2.]))
    noisy = true.clone(); noisy[0] = 1
    rl = Relabeller(noisy, lin, margin=2.0, patience=2)
    idx = torch.arange(10)
    rl.step(idx, lin(feats), 1)
    assert torch.equal(rl.labels, noisy)                       # one hit is not enough
    rl.step(idx, lin(feats), 2)
    assert torch.equal(rl.labels, true) and torch.equal(rl.original, noisy)
    assert rl.log().tolist() == [[2, 0, 1, 0]]
    assert rl.stats(true) == {'label_noise': 0.0, 'relabelled': 1, 'relabel_precision': 1.0, 'relabel_recall': 1.0}
    rl.remove()
    assert not lin._forward_hooks


def test_bad_arguments():
    lin = nn.Linear(2, 2)
    for kw in (dict(margin=0.9), dict(patience=0), dict(patience=1.5), dict(k=0)):
        with pytest.raises(ValueError): Relabeller(torch.zeros(3, dtype=torch.long), lin, **kw)
    with pytest.raises(ValueError, match='layer'): Relabeller(torch.zeros(3, dtype=torch.long), nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match='relabel'): train(toy(), 'gradsim', epochs=1, relabel=dict(margn=2), progress=False)


def test_train_with_relabel_records_and_reproduces():
    d = toy()
    h1, h2 = (train(d, 'gradsim', epochs=3, bs=32, relabel=dict(margin=1.0, patience=1), progress=False) for _ in range(2))
    assert h1 == {**h2, 'epochs': [{**e, 'seconds': a['seconds']} for e, a in zip(h2['epochs'], h1['epochs'])]}
    assert h1['config']['relabel'] == {'margin': 1.0, 'patience': 1}
    last = h1['epochs'][-1]
    assert last['relabelled'] > 0 and len(h1['relabels']) >= last['relabelled']
    assert all(e >= 1 and o != n for e, i, o, n in h1['relabels'])
    assert 'relabels' not in train(d, 'gradsim', epochs=1, bs=32, progress=False)


def test_run_names():
    assert run_name(dict(rule='gradsim', relabel={}), 0) == 'gradsim_symmetric0.4_e30_layerslast_a4_k4_relabel3-3_seed0.json'   # the defaults
    assert run_name(dict(rule='vanilla', kind='cifar10n-worse', noise=0.9), 2) == 'vanilla_cifar10n-worse_e30_seed2.json'
