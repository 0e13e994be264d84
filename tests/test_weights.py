"Properties of the weighting rules"
import math
import pytest, torch
from gradsim_nb import gradsim_weights
from gradsim_nb.weights import (cosine_from_gram, rank_drop_weights, oracle_weights, rectified_gaussian_weights,
                                uniform_random_weights, vanilla_weights)


def random_gram(m=12, dim=5, seed=0):
    g = torch.randn(m, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return g, g @ g.T


@pytest.mark.parametrize('a, k', [(4., 4), (8., 1), (1., None), (0.5, 100)])
def test_sum_to_one_and_non_negative(a, k):
    w = gradsim_weights(random_gram()[1], a, k)
    assert torch.isclose(w.sum(), torch.tensor(1., dtype=w.dtype)) and (w >= 0).all()


def test_permutation_equivariant():
    _, G = random_gram()
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(gradsim_weights(G[perm][:, perm]), gradsim_weights(G)[perm])


def test_ignores_gradient_scale():
    g, G = random_gram()
    scale = torch.rand(12, 1, dtype=g.dtype) * 10 + 0.1
    gs = g * scale
    assert torch.allclose(gradsim_weights(gs @ gs.T), gradsim_weights(G))


def test_a_zero_is_uniform():
    assert torch.allclose(gradsim_weights(random_gram()[1], a=0.), torch.full((12,), 1 / 12, dtype=torch.float64))


def test_matches_formula():
    g, G = random_gram(m=6)
    cos = torch.nn.functional.cosine_similarity(g[:, None], g[None], dim=-1)
    raw = torch.stack([torch.exp(4 * torch.cat([cos[i, :i], cos[i, i + 1:]])).topk(2).values.sum() for i in range(6)])
    assert torch.allclose(gradsim_weights(G, 4., 2), raw / raw.sum())


def test_k_above_batch_uses_all_others():
    _, G = random_gram(m=5)
    assert torch.allclose(gradsim_weights(G, 2., 4), gradsim_weights(G, 2., 128))


def test_batch_of_one_and_zero_gradient():
    assert torch.equal(gradsim_weights(torch.tensor([[3.]])), torch.ones(1))
    g = torch.tensor([[1., 0.], [0., 0.], [1., 1.]])
    assert torch.isfinite(cosine_from_gram(g @ g.T)).all() and torch.isfinite(gradsim_weights(g @ g.T)).all()


def test_within_class():
    g = torch.tensor([[1., 0.], [1., .1], [-1., 0.], [0., 1.]])
    w = gradsim_weights(g @ g.T, a=1., k=None, labels=torch.tensor([0, 0, 1, 0]))
    cos01, cos03, cos13 = 1 / math.sqrt(1.01), 0., .1 / math.sqrt(1.01)
    raw = torch.tensor([math.exp(cos01) + math.exp(cos03), math.exp(cos01) + math.exp(cos13), 0., math.exp(cos03) + math.exp(cos13)])
    assert torch.allclose(w, raw / raw.sum())
    assert torch.allclose(gradsim_weights(g @ g.T, labels=torch.arange(4)), torch.full((4,), .25))   # no partners: uniform


@pytest.mark.parametrize('kw, match', [({'k': 0}, 'k:'), ({'k': 2.5}, 'k:'), ({'a': -1.}, 'a:'), ({'a': float('nan')}, 'a:')])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match): gradsim_weights(torch.eye(3), **kw)


def test_bad_gram():
    with pytest.raises(ValueError, match='gram'): gradsim_weights(torch.ones(3, 2))
    with pytest.raises(ValueError, match='NaN'): gradsim_weights(torch.full((2, 2), float('nan')))


def test_rank_drop():
    s = torch.tensor([.1, .4, .2, .3, .0])
    assert torch.equal(rank_drop_weights(s, 0.4), torch.tensor([0, 1 / 3, 1 / 3, 1 / 3, 0]))
    assert torch.equal(rank_drop_weights(s, 0.4, 'top'), torch.tensor([1 / 3, 0, 1 / 3, 0, 1 / 3]))
    with pytest.raises(ValueError, match='drop'): rank_drop_weights(s, .2, 'middle')
    with pytest.raises(ValueError, match='q'): rank_drop_weights(s, 1.)


def test_controls():
    assert torch.allclose(vanilla_weights(4), torch.full((4,), .25))
    assert torch.equal(oracle_weights(torch.tensor([1, 2, 3]), torch.tensor([1, 0, 3])), torch.tensor([.5, 0, .5]))
    gen = lambda: torch.Generator().manual_seed(3)
    assert torch.equal(rectified_gaussian_weights(64, gen()), rectified_gaussian_weights(64, gen()))  # seeded
    w = uniform_random_weights(64, gen())
    assert (w > 0).all() and (w < 2 / 64).all()


def shifted_reference(gram, a, k):
    "Float64, written out: exp(a (cos - c)) over each row's top-k partners, c the largest off-diagonal cosine, normalised"
    cos = cosine_from_gram(gram.double())
    m = len(cos)
    off = cos[~torch.eye(m, dtype=torch.bool)].view(m, m - 1)
    raw = torch.exp(a * (off - off.max())).topk(min(k, m - 1), dim=1).values.sum(1)
    return raw / raw.sum()


@pytest.mark.parametrize('a', [85., 89., 100., 300., 1000.])
def test_large_a_does_not_overflow(a):
    "Regression: a >= 89 in float32 (a >= 710 in float64) gave uniform or NaN weights whatever the Gram"
    _, G = random_gram(m=16, dim=3, seed=2)
    ref = shifted_reference(G, a, 4)
    assert ref.max() > 0.1            # far from uniform (1/16): the test can fail
    for dt in (torch.float32, torch.float64):
        w = gradsim_weights(G.to(dt), a, 4)
        assert torch.isfinite(w).all() and torch.allclose(w.double(), ref, atol=1e-5)


def test_a_88_on_equal_gradients_is_uniform():
    assert torch.equal(gradsim_weights(torch.ones(4, 4), a=88.), torch.full((4,), .25))
    assert torch.equal(gradsim_weights(torch.ones(4, 4, dtype=torch.float64), a=709.), torch.full((4,), .25, dtype=torch.float64))


def test_normal_a_uses_the_plain_formula_bit_for_bit():
    "Recorded runs must reproduce: below the overflow bound the weights are exactly exp(a cos) summed and normalised"
    _, G = random_gram(m=128, dim=5, seed=3)
    G = G.float()
    for a, k in [(4., 4), (8., 2), (80., 4)]:
        s = torch.exp(a * cosine_from_gram(G)) * ~torch.eye(128, dtype=torch.bool)
        w = s.topk(k, dim=1).values.sum(1)
        assert torch.equal(gradsim_weights(G, a, k), w / w.sum())


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_gram(dtype):
    "Regression: a float16 Gram of agreeing gradients at a = 8, m = 128 overflowed to all-zero weights"
    g = torch.randn(1, 6).expand(128, 6) + 0.05 * torch.randn(128, 6, generator=torch.Generator().manual_seed(0))
    G = g @ g.T
    w = gradsim_weights(G.to(dtype), a=8.)
    assert w.dtype == torch.float32 and torch.isfinite(w).all() and torch.isclose(w.sum(), torch.tensor(1.))
    assert torch.allclose(w, gradsim_weights(G, a=8.), rtol=0.02)


def test_empty_gram():
    with pytest.raises(ValueError, match='gram: empty batch'): gradsim_weights(torch.zeros(0, 0))


def test_labels_as_a_sequence():
    import numpy as np
    _, G = random_gram(m=6)
    y = [0, 1, 0, 1, 1, 2]
    ref = gradsim_weights(G, 2., 2, torch.tensor(y))
    assert torch.equal(gradsim_weights(G, 2., 2, y), ref) and torch.equal(gradsim_weights(G, 2., 2, np.array(y)), ref)
    with pytest.raises(ValueError, match=r'labels: expected 6 labels, one per example, got shape \(5,\)'): gradsim_weights(G, labels=y[:5])
