import torch

torch.set_num_threads(2)


def pytest_configure(config):
    # torchvision 0.29 marks its JPEG codecs deprecated in favour of torchcodec; they still work
    config.addinivalue_line('filterwarnings', 'ignore:The image decoding and encoding:DeprecationWarning')
