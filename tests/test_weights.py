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
