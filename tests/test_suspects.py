"The suspects CSV names the image a person should look at"
import csv, tarfile
from pathlib import Path
import pytest, torch
from torchvision.io import decode_jpeg
from gradsim_nb import data as D
from gradsim_nb.suspects import image_names, write_suspects

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10-jpeg.tar.gz'


def test_names_need_the_full_training_set_in_a_known_order():
    t = torch.arange(50000) % 10
    d = D.NoisyData(torch.zeros(1), t, t, None, None, 'original')
    assert image_names(d)[7] == 'CIFAR10(train=True)[7]'
    assert image_names(D.NoisyData(torch.zeros(1), t, t, None, None, 'class-major')) is None   # labels not sorted: not a class-major copy
    assert image_names(D.NoisyData(torch.zeros(1), t[:100], t[:100], None, None, 'original')) is None


@pytest.mark.skipif(not SHARED.exists(), reason='needs the offline CIFAR-10 copy in ../shared/data')
def test_a_named_file_holds_the_image_at_that_index(tmp_path):
    d = D.noisy_cifar10(0.4, data=SHARED, verbose=False)
    names = image_names(d)
    idx = [0, 4999, 5000, 23456, 49999]
    with tarfile.open(SHARED) as tf:
        for i in idx:
            raw = tf.extractfile(f'cifar10-jpeg/{names[i]}').read()
            assert torch.equal(decode_jpeg(torch.frombuffer(bytearray(raw), dtype=torch.uint8)), d.x[i]), names[i]
    f = write_suspects(tmp_path / 's.csv', torch.arange(50000.), d.y, top=2, names=names)
    rows = list(csv.DictReader(open(f)))
    assert [r['image'] for r in rows] == [names[49999], names[49998]] and rows[0]['index'] == '49999'
