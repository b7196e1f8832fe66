import pytest
import torch

from libs.pipeline.model import SeededDropout, attach_dropout_generator, build_model
from tests.unit.pipeline_model.conftest import new_model


def test_layers_and_output_shape():
    model = build_model(5, [7, 3], "tanh", 0.0)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 7), (7, 3), (3, 3)]
    assert model(torch.zeros(4, 5)).shape == (4, 3)


def test_generator_makes_initial_weights_depend_on_the_seed_only():
    torch.manual_seed(123)  # the global RNG must not matter
    a = new_model(seed=7).state_dict()
    torch.manual_seed(999)
    b = new_model(seed=7).state_dict()
    c = new_model(seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_init_bounds_follow_fan_in():
    model = build_model(100, [50], generator=torch.Generator().manual_seed(0))
    assert model[0].weight.abs().max() <= 0.1 + 1e-7  # 1/sqrt(100)
    assert model[0].weight.abs().max() > 0.09  # and actually spans the range


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"activation": "swish"}, "activation"),
        ({"hidden_layers": [4, 0]}, "hidden_layers"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_architecture_names_the_field(kwargs, field):
    args = {"input_size": 3, "hidden_layers": [4], "activation": "relu", "dropout": 0.0} | kwargs
    with pytest.raises(ValueError, match=field):
        build_model(**args)


def test_seeded_dropout_is_reproducible_and_off_in_eval():
    layer = SeededDropout(0.5)
    x = torch.ones(1000)
    attach_dropout_generator(layer, torch.Generator().manual_seed(3))
    first = layer(x)
    attach_dropout_generator(layer, torch.Generator().manual_seed(3))
    assert torch.equal(first, layer(x))
    assert set(first.unique().tolist()) == {0.0, 2.0}  # inverted scaling keeps the mean
    layer.eval()
    assert torch.equal(layer(x), x)
