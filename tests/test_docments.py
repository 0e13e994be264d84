"Every parameter of every exported function and class has a docment, so `show_doc` renders a table of parameters"
import importlib, inspect, pkgutil
import pytest
from fastcore.docments import docments
import gradsim_nb

MODULES = [m.name for m in pkgutil.iter_modules(gradsim_nb.__path__) if not m.name.startswith('_')]


def undocumented(mod):
    "Exported callables of `mod` with parameters that have no docment: {name: [parameter, ...]}"
    out = {}
    for name in getattr(mod, '__all__', []):
        obj = getattr(mod, name, None)
        if not callable(obj) or getattr(obj, '__module__', None) != mod.__name__: continue
        # a dataclass's __init__ has no source: its docments are comments on its fields
        f = obj.__init__ if inspect.isclass(obj) and not hasattr(obj, '__dataclass_fields__') else obj
        try: params = [p for p in inspect.signature(f).parameters if p not in ('self', 'cls', 'args', 'kwargs')]
        except (TypeError, ValueError): continue
        if not params: continue
        docs = docments(f)
        missing = [p for p in params if not docs.get(p)]
        if missing: out[name] = missing
    return out


@pytest.mark.parametrize('name', MODULES)
def test_every_parameter_has_a_docment(name):
    assert undocumented(importlib.import_module(f'gradsim_nb.{name}')) == {}


def test_the_check_can_fail():
    "A function without docments is reported, so an empty report above means something"
    import types
    mod = types.ModuleType('fake'); mod.__all__ = ['f']
    def f(x, y=1): "no docments"
    f.__module__ = 'fake'; mod.f = f
    assert undocumented(mod) == {'f': ['x', 'y']}
