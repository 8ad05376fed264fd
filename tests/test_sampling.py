"""Sampling options: one value object, checked once, with one noise-mode check shared by the CLI, the workflow
and every network, and records that keep the layout they had as plain dicts."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest
import torch

from fidlens.cli.main import main as cli_main
from fidlens.core.errors import FidlensError
from fidlens.extraction.pipeline import GenerationSettings
from fidlens.generators.base import GeneratorBase
from fidlens.generators.generate import images_for_seeds, synthesize_uint8, ws_for_latents
from fidlens.generators.ppca import PPCAGenerator
from fidlens.generators.sampling import (
    DEFAULT_SAMPLING,
    NOISE_MODES,
    SAMPLING_KEYS,
    Sampling,
    check_noise_mode,
)
from fidlens.generators.stylegan2 import Generator as StyleGAN2
from fidlens.generators.stylegan3 import Generator as StyleGAN3
from fidlens.studies.pairs.study import StudySettings


def bad_noise_message() -> str:
    with pytest.raises(FidlensError) as caught:
        Sampling.from_mapping({"noise_mode": "bad"})
    return str(caught.value)


# ----------------------------------------------------------------------------- the value object


def test_defaults_are_nvidias_and_the_record_keeps_its_layout():
    s = Sampling()
    assert s == DEFAULT_SAMPLING
    assert s.as_dict() == {"truncation_psi": 1.0, "truncation_cutoff": None, "noise_mode": "const", "class_idx": None}
    assert list(s.as_dict()) == list(SAMPLING_KEYS)  # the key order records have always used
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.noise_mode = "random"  # type: ignore[misc]


@pytest.mark.parametrize("values", [
    {},
    {"truncation_psi": 0.7, "truncation_cutoff": 8, "noise_mode": "random", "class_idx": 3},
    {"truncation_psi": 1, "noise_mode": "none"},
    {"truncation_psi": -0.5, "truncation_cutoff": 0, "class_idx": 0},
])
def test_round_trip_through_a_plain_dict(values):
    s = Sampling.from_mapping(values)
    assert Sampling.from_mapping(s.as_dict()) == s
    assert {k: v for k, v in s.as_dict().items() if k in values} == values
    assert json.loads(json.dumps(s.as_dict())) == s.as_dict()


def test_values_are_kept_as_given_so_cache_keys_do_not_move():
    """An integer ψ from a YAML config stays an integer: json writes '1', as the plain dicts did."""
    assert json.dumps(Sampling(truncation_psi=1).as_dict()["truncation_psi"]) == "1"
    assert json.dumps(Sampling(truncation_psi=1.0).as_dict()["truncation_psi"]) == "1.0"
    assert Sampling(truncation_psi=np.float64(0.5)).truncation_psi == 0.5


@pytest.mark.parametrize(("values", "words"), [
    ({"truncation_psi": float("nan")}, "truncation psi"),
    ({"truncation_psi": float("inf")}, "truncation psi"),
    ({"truncation_psi": "0.7"}, "truncation psi"),
    ({"truncation_psi": True}, "truncation psi"),
    ({"truncation_psi": None}, "truncation psi"),
    ({"truncation_cutoff": -1}, "truncation cutoff"),
    ({"truncation_cutoff": 2.0}, "truncation cutoff"),
    ({"truncation_cutoff": True}, "truncation cutoff"),
    ({"noise_mode": "bad"}, "noise mode"),
    ({"noise_mode": None}, "noise mode"),
    ({"noise_mode": "Const"}, "noise mode"),
    ({"class_idx": -1}, "class"),
    ({"class_idx": "1"}, "class"),
    ({"class_idx": False}, "class"),
])
def test_bad_values_are_refused_in_one_line_when_made(values, words):
    with pytest.raises(FidlensError, match=words) as caught:
        Sampling.from_mapping(values)
    assert "\n" not in str(caught.value)
    with pytest.raises(FidlensError, match=words):
        Sampling(**values)


def test_unknown_keys_are_errors_unless_named():
    with pytest.raises(FidlensError, match="unknown sampling option 'truncation'"):
        Sampling.from_mapping({"truncation": 0.5})  # a typo must not fall back to ψ = 1 in silence
    with pytest.raises(FidlensError, match="num_images"):
        Sampling.from_mapping({"num_images": 10, "noise_mode": "random"})
    s = Sampling.from_mapping({"num_images": 10, "noise_mode": "random"}, ignore=("num_images",))
    assert s == Sampling(noise_mode="random")
    with pytest.raises(FidlensError, match="mapping"):
        Sampling.from_mapping([("noise_mode", "const")])  # type: ignore[arg-type]


def test_kwargs_fit_the_generator_interface():
    forward = inspect.signature(GeneratorBase.forward).parameters
    assert set(Sampling().kwargs()) <= set(forward)
    assert set(Sampling().mapping_kwargs()) <= set(forward)
    assert "noise_mode" not in Sampling().mapping_kwargs()


def test_kwargs_call_gives_the_images_of_the_generation_api():
    torch.manual_seed(0)
    G = StyleGAN2(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={"num_layers": 2},
                  channel_base=64, channel_max=8).eval()
    with torch.no_grad():  # w_avg away from 0, so truncation changes the image
        G.mapping.w_avg.add_(0.5)
    s = Sampling(truncation_psi=0.5, truncation_cutoff=2, noise_mode="const")
    z = torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim)).float()
    with torch.no_grad():
        direct = G(z, None, **s.kwargs())
    via_api = images_for_seeds(G, [3], sampling=s)
    assert torch.equal(via_api, (direct * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    assert not torch.equal(via_api, images_for_seeds(G, [3]))  # the options were used


# ----------------------------------------------------------------------------- one noise-mode check


def test_one_noise_mode_check_for_every_network():
    message = bad_noise_message()
    assert check_noise_mode("random") == "random"
    with pytest.raises(FidlensError) as caught:
        check_noise_mode("bad")
    assert str(caught.value) == message
    torch.manual_seed(0)
    networks = [
        PPCAGenerator(z_dim=4, img_resolution=4, img_channels=1),
        StyleGAN2(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={"num_layers": 2},
                  channel_base=64, channel_max=8),
        StyleGAN3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 2},
                  channel_base=128, channel_max=16, conv_kernel=3, use_radial_filters=False, num_layers=4,
                  num_critical=1, margin_size=2),
    ]
    for G in networks:
        ws = torch.zeros(1, G.num_ws, G.w_dim)
        for mode in NOISE_MODES:
            assert G.synthesis(ws, noise_mode=mode).shape[0] == 1
        with pytest.raises(FidlensError) as caught:
            G.synthesis(ws, noise_mode="bad")
        assert str(caught.value) == message, type(G).__name__


def test_generation_api_uses_the_noise_mode_it_is_given():
    G = PPCAGenerator(z_dim=4, img_resolution=4, img_channels=1)
    with torch.no_grad():
        G.synthesis.noise_std.fill_(1.0)
        G.synthesis.noise_const.normal_()
    ws = ws_for_latents(G, np.zeros((1, 4)))
    const, none = synthesize_uint8(G, ws), synthesize_uint8(G, ws, Sampling(noise_mode="none"))
    assert not torch.equal(const, none)
    assert torch.equal(const, synthesize_uint8(G, ws, Sampling(noise_mode="const")))


def test_cli_and_workflow_give_the_same_one_line_error(tmp_path, capsys):
    """`fidlens generate --noise-mode bad` and a rule's bad dict: one message, before any network is read."""
    message = bad_noise_message()
    missing = tmp_path / "no-such-network.pkl"  # never opened: the options are checked first
    for command in (["generate", "--network", str(missing), "--seeds", "0", "--outdir", str(tmp_path / "out")],
                    ["probe", "--network", str(missing), "--seed", "0", "--outdir", str(tmp_path / "probe")]):
        assert cli_main([*command, "--noise-mode", "bad", "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {message}\n"
    assert not (tmp_path / "out").exists()
    for settings in (GenerationSettings, StudySettings):
        with pytest.raises(FidlensError) as caught:
            settings.from_mapping({"num_images": 10, "latent_seed": 0, "noise_mode": "bad"})
        assert str(caught.value) == message


# ----------------------------------------------------------------------------- settings built on Sampling


def rule_generation_dict(**sampling) -> dict:
    """The flat dict the workflow's rules pass (num_images, latent_seed, then the four options)."""
    return {"num_images": 16, "latent_seed": 4, **Sampling(**sampling).as_dict()}


def test_generation_settings_record_is_the_flat_dict_of_the_rules():
    values = rule_generation_dict(truncation_psi=0.7, noise_mode="random")
    settings = GenerationSettings.from_mapping(values)
    assert settings.sampling == Sampling(truncation_psi=0.7, noise_mode="random")
    assert settings.record() == values and list(settings.record()) == list(values)
    with pytest.raises(FidlensError, match="unknown sampling option 'psi'"):
        GenerationSettings.from_mapping({**values, "psi": 0.5})
    with pytest.raises(FidlensError, match="num_images"):
        GenerationSettings.from_mapping({"latent_seed": 0})


def test_study_settings_record_is_flat_and_in_its_old_order():
    values = {"num_images": 20, "latent_seed": 7, "fraction": 0.15, "delete_mode": "refill",
              **Sampling(class_idx=2).as_dict(), "batch_size": 8}
    settings = StudySettings.from_mapping(values)
    assert settings.sampling == Sampling(class_idx=2) and settings.batch_size == 8
    record = settings.as_dict()
    assert record == values
    assert list(record) == ["num_images", "latent_seed", "fraction", "delete_mode", "batch_size", *SAMPLING_KEYS]
    with pytest.raises(FidlensError, match="unknown sampling option 'seed'"):
        StudySettings.from_mapping({**values, "seed": 1})
