__version__ = "0.1.0"

from .pergrad import per_example_gram
from .weights import gradsim_weights
from .gradsim import GradSim
from .learner import Learner
from .train import train
