"Data loading and label noise: layouts, errors, cache, exact noise rates"
import os, tarfile, warnings
from pathlib import Path
import pytest, torch
from torchvision.io import encode_jpeg
from gradsim_nb import data as D

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10-jpeg.tar.gz'


def tiny_image_folder(root, classes=D.CLASSES, n=2):
    for split in ('train', 'test'):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                (root / split / c / f'{i:04d}.jpg').write_bytes(encode_jpeg(torch.full((3, 32, 32), 20 * i, dtype=torch.uint8)).numpy().tobytes())
    return root


def test_decode_folder_and_tarball(tmp_path):
    root = tiny_image_folder(tmp_path / 'cifar10-jpeg')
    d = D.decode_image_folder(root)
    assert d['train'][0].shape == (20, 3, 32, 32) and d['train'][0].dtype == torch.uint8
    assert d['train'][1].tolist() == [c for c in range(10) for _ in range(2)]      # class-major, sorted
    tgz = tmp_path / 'c.tar.gz'
    with tarfile.open(tgz, 'w:gz') as tf: tf.add(root, arcname='cifar10-jpeg')
    dt = D.decode_image_folder(tgz)
    assert torch.equal(dt['train'][0], d['train'][0]) and torch.equal(dt['test'][1], d['test'][1])


def test_wrong_layout_says_what_to_do(tmp_path):
    root = tiny_image_folder(tmp_path / 'x', classes=D.CLASSES[:3])
    with pytest.raises(ValueError, match='ImageFolder layout'): D.decode_image_folder(root)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='data: .*GRADSIM_DATA'): D.load_cifar10(tmp_path / 'empty', cache=tmp_path / 'cache')


def test_nothing_found_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.delenv('GRADSIM_DATA', raising=False)
    def offline(root, download): raise RuntimeError('no network')
    monkeypatch.setattr(D, 'load_torchvision', offline)
    with pytest.raises(FileNotFoundError) as e: D.load_cifar10(cache=tmp_path)
    msg = str(e.value)
    assert 'no cache at' in msg and 'GRADSIM_DATA is not set' in msg and 'download' in msg


@pytest.mark.skipif(not SHARED.exists(), reason='needs the offline CIFAR-10 copy in ../shared/data')
def test_real_data_and_corrupt_cache_is_rebuilt(tmp_path):
    (tmp_path / 'cifar10-imagefolder.pt').write_bytes(b'not a cache')
    with pytest.warns(UserWarning, match='corrupt'): d = D.load_cifar10(SHARED, cache=tmp_path)
    assert d['train'][0].shape == (50000, 3, 32, 32) and d['test'][1].bincount().tolist() == [1000] * 10
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        d2 = D.load_cifar10(SHARED, cache=tmp_path)   # now from the cache, silently
    assert torch.equal(d2['test'][0], d['test'][0])
    # Regression: with this cache present, any bad --data trained silently on it. Now each is decoded, and refused.
    cached = (tmp_path / 'cifar10-imagefolder.pt').read_bytes()
    bad = tmp_path / 'bad'; bad.mkdir()
    (bad / 'empty.tar.gz').write_bytes(b'')
    (bad / 'truncated.tar.gz').write_bytes(SHARED.read_bytes()[:5_000_000])
    other = tmp_path / 'other.tar.gz'      # another data set in the same layout
    with tarfile.open(other, 'w:gz') as tf: tf.add(tiny_image_folder(tmp_path / 'tiny'), arcname='cifar10-jpeg')
    for f, match in [(bad / 'empty.tar.gz', 'the file is empty'), (bad / 'truncated.tar.gz', 'truncated'),
                     (other, 'does not hold the 50,000 \\+ 10,000 images')]:
        with pytest.warns(UserWarning, match=f'not from {f}'), pytest.raises(ValueError, match=match): D.load_cifar10(f, cache=tmp_path)
    assert (tmp_path / 'cifar10-imagefolder.pt').read_bytes() == cached       # the good cache is left as it was
    copy = tmp_path / 'elsewhere' / 'copy.tar.gz'; copy.parent.mkdir()       # the same bytes elsewhere: same cache, no rebuild
    copy.write_bytes(SHARED.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert torch.equal(D.load_cifar10(copy, cache=tmp_path)['train'][1], d['train'][1])


@pytest.mark.parametrize('kind', D.NOISE_KINDS)
def test_noise_rates(kind):
    y = torch.arange(10).repeat(1000)
    yn = D.add_label_noise(y, 0.4, kind, seed=3)
    wrong = (yn != y).sum().item()
    if kind == 'ren': assert 3300 < wrong < 3900          # about 0.4 * 9/10 of 10,000
    else: assert wrong == 4000                             # exactly round(r N) changed
    if kind == 'pair': assert ((yn - y) % 10)[yn != y].eq(1).all()
    assert torch.equal(yn, D.add_label_noise(y, 0.4, kind, seed=3))   # seeded


def test_noise_bad_input():
    with pytest.raises(ValueError, match='kind: unknown noise type'): D.add_label_noise(torch.zeros(3).long(), .2, 'gaussian')
    with pytest.raises(ValueError, match=r'rate: .*\[0, 1\)'): D.add_label_noise(torch.zeros(3).long(), 1.0)


def test_noise_is_independent_of_batch_order_and_subset():
    "Regression: one seed once drew the flipped labels and the first epoch's batch order from the same stream"
    y = torch.arange(10).repeat(5000)
    flipped = D.add_label_noise(y, 0.4, seed=0) != y
    first_batches = torch.cat(D.batch_indices(len(y), 128, D.rng('batches', 0))[:50])
    assert 0.35 < flipped[first_batches].float().mean() < 0.45
    nd = D.NoisyData(y.view(-1, 1, 1, 1).to(torch.uint8), D.add_label_noise(y, 0.4, seed=0), y, y[:10], y[:10])
    assert 0.35 < nd.subset(2000).noise < 0.45


def test_class_major_positions():
    y = torch.tensor([2, 0, 2, 1, 0])
    pos = D.class_major_positions(y)
    assert pos.tolist() == [3, 0, 4, 2, 1]
    assert torch.equal(torch.empty_like(y).scatter_(0, pos, y), y.sort(stable=True).values)


@pytest.mark.skipif(not SHARED.exists(), reason='needs the offline CIFAR-10 copy and CIFAR-10N labels in ../shared/data')
def test_cifar10n_labels_line_up_with_the_images():
    nd = D.cifar10n('worse', data=SHARED)          # raises unless CIFAR-10N's clean labels match the copy's, position by position
    assert abs(nd.noise - 0.402) < 0.001 and abs(D.cifar10n('aggre', data=SHARED).noise - 0.090) < 0.001
    with pytest.raises(ValueError, match='label_set'): D.cifar10n('best', data=SHARED)


# Broken data and cache locations: a one-line error that names the file, nothing decoded first, nothing left behind.
# `small` makes tiny copies count as CIFAR-10, so the cache logic can be tested in milliseconds.

@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(D, '_valid', lambda d: isinstance(d, dict) and {'train', 'test', 'order'} <= d.keys())


def tarball(tmp_path, name='c.tar.gz', shade=20, edit=None):
    "A tiny CIFAR-10-layout .tar.gz; `edit(root)` may break a file before it is packed"
    root = tiny_image_folder(tmp_path / f'{name}.d', n=2)
    for f in root.rglob('*.jpg'): f.write_bytes(encode_jpeg(torch.full((3, 32, 32), shade, dtype=torch.uint8)).numpy().tobytes())
    if edit: edit(root)
    with tarfile.open(tmp_path / name, 'w:gz') as tf: tf.add(root, arcname='cifar10-jpeg')
    return tmp_path / name


def one_line(e): assert '\n' not in str(e.value); return str(e.value)


def test_unreadable_tarballs_are_named(tmp_path):
    "Regression: an empty, truncated or non-gzip tarball ended in a raw tarfile.ReadError or EOFError traceback"
    good = tarball(tmp_path).read_bytes()
    cases = {'empty.tar.gz': (b'', 'the file is empty'), 'cut.tar.gz': (good[:len(good) // 2], 'truncated'),
             'text.tar.gz': (b'not a tarball\n' * 50, 'not a gzip-compressed tar'), 'junk.tar.gz': (__import__('gzip').compress(b'junk' * 999), 'tar')}
    for name, (content, why) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError) as e: D.load_cifar10(tmp_path / name, cache=tmp_path / 'cache')
        msg = one_line(e)
        assert msg.startswith(f'data: cannot read the tarball {tmp_path / name} (') and why in msg and 'GRADSIM_DATA' in msg


@pytest.mark.parametrize('broken, why', [(b'GIF89a not a jpeg', 'Not a JPEG file'), ('half', 'truncated'), (b'', 'an empty file'),
                                         ('big', '64x64 image')])
def test_corrupt_image_is_named(tmp_path, broken, why):
    "Regression: a corrupt image ended in a decode_jpeg traceback that did not name the file"
    jpg = encode_jpeg(torch.zeros(3, 32, 32, dtype=torch.uint8)).numpy().tobytes()
    content = {'half': jpg[:len(jpg) // 2], 'big': encode_jpeg(torch.zeros(3, 64, 64, dtype=torch.uint8)).numpy().tobytes()}.get(broken, broken)
    def edit(root): (root / 'test' / 'frog' / '0001.jpg').write_bytes(content)
    src = tarball(tmp_path, edit=edit)
    with pytest.raises(ValueError) as e: D.decode_image_folder(src)
    assert one_line(e).startswith(f'data: member cifar10-jpeg/test/frog/0001.jpg of {src} ') and why in str(e.value)
    with pytest.raises(ValueError, match=f"data: {tmp_path / 'c.tar.gz.d' / 'test' / 'frog' / '0001.jpg'} .*{why}"):
        D.decode_image_folder(tmp_path / 'c.tar.gz.d')   # the same file in a folder copy


def test_cache_serves_only_its_own_source(tmp_path, small):
    "Regression: with a cache present, any --data trained silently on the cached images; the cache was keyed by its name alone"
    a, b = tarball(tmp_path, 'a.tar.gz', shade=0), tarball(tmp_path, 'b.tar.gz', shade=200)
    cache = tmp_path / 'cache'
    da = D.load_cifar10(a, cache=cache)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert torch.equal(D.load_cifar10(a, cache=cache)['train'][0], da['train'][0])     # same source: the cache, silently
    with pytest.warns(UserWarning, match=r'was made from .*a\.tar\.gz \(tarball sha256 [0-9a-f]{15}\.\.\.\), not from .*b\.tar\.gz'):
        db = D.load_cifar10(b, cache=cache)
    assert db['train'][0].float().mean() > 150 > 50 > da['train'][0].float().mean()          # b's images, not a's
    saved = (cache / 'cifar10-imagefolder.pt').read_bytes()
    (tmp_path / 'empty.tar.gz').write_bytes(b'')
    with pytest.warns(UserWarning), pytest.raises(ValueError, match='the file is empty'): D.load_cifar10(tmp_path / 'empty.tar.gz', cache=cache)
    assert (cache / 'cifar10-imagefolder.pt').read_bytes() == saved
    b.write_bytes(tarball(tmp_path, 'c.tar.gz', shade=100).read_bytes())                   # same path, new content
    with pytest.warns(UserWarning, match='rebuilding'): assert D.load_cifar10(b, cache=cache)['train'][0].float().mean() == 100


def test_cache_of_a_folder_follows_its_files(tmp_path, small):
    root = tiny_image_folder(tmp_path / 'cifar10-jpeg')
    D.load_cifar10(root, cache=tmp_path)
    f = root / 'train' / 'cat' / '0000.jpg'
    f.write_bytes(encode_jpeg(torch.full((3, 32, 32), 250, dtype=torch.uint8)).numpy().tobytes())
    with pytest.warns(UserWarning, match='rebuilding'): d = D.load_cifar10(root, cache=tmp_path)
    assert d['train'][0][6].float().mean() > 200    # train/cat/0000.jpg is the 7th training image, class-major


def test_cache_of_an_older_version_is_rebuilt(tmp_path, small):
    src = tarball(tmp_path)
    old = D.decode_image_folder(src)                  # what an older version cached: no 'source'
    old['train'] = (old['train'][0] + 1, old['train'][1])
    torch.save(old, tmp_path / 'cifar10-imagefolder.pt')
    with pytest.warns(UserWarning, match=r'unrecorded source \(an older version\)'): d = D.load_cifar10(src, cache=tmp_path)
    assert torch.equal(d['train'][0], D.decode_image_folder(src)['train'][0]) and d['source'].startswith('tarball sha256 ')


def test_torchvision_folder_offline(tmp_path, small, monkeypatch):
    "The offline torchvision path: a folder with cifar-10-batches-py, cached by its files' names, sizes and mtimes"
    (tmp_path / 'tv' / 'cifar-10-batches-py').mkdir(parents=True)
    with pytest.raises(ValueError, match=r"data: .*cifar-10-batches-py is missing files or they fail torchvision's MD5 check"):
        D.load_cifar10(tmp_path / 'tv', cache=tmp_path / 'cache')      # torchvision itself, on an empty folder
    batch = tmp_path / 'tv' / 'cifar-10-batches-py' / 'data_batch_1'
    batch.write_bytes(b'1')
    calls = []
    def fake(root, download):
        calls.append((Path(root), download))
        return {'train': (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2).long()), 'test': (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.zeros(1).long()), 'order': 'original'}
    monkeypatch.setattr(D, 'load_torchvision', fake)
    for _ in range(2): d = D.load_cifar10(tmp_path / 'tv', cache=tmp_path / 'cache')
    assert calls == [(tmp_path / 'tv', False)] and d['order'] == 'original'     # the second load came from the cache
    batch.write_bytes(b'22')
    with pytest.warns(UserWarning, match='rebuilding'): D.load_cifar10(tmp_path / 'tv', cache=tmp_path / 'cache')
    assert len(calls) == 2


@pytest.mark.parametrize('where', ['file', 'under_a_file', 'cache_file_is_a_folder'])
def test_unusable_cache_location_fails_before_decoding(tmp_path, small, monkeypatch, where):
    "Regression: an unwritable cache ended in a traceback after a full decode; a folder in the cache file's place left a temp file"
    src = tarball(tmp_path)
    (tmp_path / 'afile').write_text('a user file')
    cache = {'file': tmp_path / 'afile', 'under_a_file': tmp_path / 'afile' / 'sub', 'cache_file_is_a_folder': tmp_path / 'c'}[where]
    if where == 'cache_file_is_a_folder': (cache / 'cifar10-imagefolder.pt').mkdir(parents=True)
    def no_decode(src): raise AssertionError('decoded before checking the cache location')
    monkeypatch.setattr(D, 'decode_image_folder', no_decode)
    with pytest.raises(ValueError) as e: D.load_cifar10(src, cache=cache)
    msg = one_line(e)
    assert msg.startswith('cache: ') and str(tmp_path) in msg and 'GRADSIM_CACHE' in msg and '--cache' in msg
    assert (tmp_path / 'afile').read_text() == 'a user file'
    assert not list(tmp_path.rglob('*.tmp'))


def test_no_temporary_file_is_left_when_saving_fails(tmp_path, small, monkeypatch):
    src = tarball(tmp_path)
    def full_disk(obj, f):
        Path(f).write_bytes(b'partial'); raise OSError(28, 'No space left on device')
    monkeypatch.setattr(D.torch, 'save', full_disk)
    with pytest.raises(OSError, match='No space'): D.load_cifar10(src, cache=tmp_path / 'cache')
    assert list((tmp_path / 'cache').iterdir()) == []


def test_a_changed_bit_in_the_cache_is_caught_and_rebuilt(tmp_path, small):
    src = tarball(tmp_path)
    good = D.load_cifar10(src, cache=tmp_path)['train'][0].clone()
    D._LOADED.clear()
    f = tmp_path / 'cifar10-imagefolder.pt'
    d = torch.load(f, weights_only=True)
    d['train'][0][0, 0, 0, 0] ^= 1                   # one bit, the checksum left as it was
    torch.save(d, f)
    with pytest.warns(UserWarning, match='does not match its checksum'): again = D.load_cifar10(src, cache=tmp_path)
    assert torch.equal(again['train'][0], good)


def test_a_missing_data_path_says_it_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'data: .*nope.tar.gz does not exist; point --data or GRADSIM_DATA'):
        D.load_cifar10(tmp_path / 'nope.tar.gz', cache=tmp_path)
