"""Every settings section follows one contract (dscoder.config): built with `from_dict`, an
unknown key and a bad value each raise ConfigError naming `section.key`; built under another
name (a stage's nested section), the error names that one."""

from __future__ import annotations

import re

import pytest

import stages.common
import stages.common.training
from dscoder.config import ConfigError, Settings
from dscoder.data.decontam import BenchmarkSource, DecontamSettings
from dscoder.data.filters import FilterSettings
from dscoder.data.ingest import IngestSettings
from dscoder.data.minhash_dedup import DedupSettings
from dscoder.data.repo_docs.document import RepoDocsSettings
from dscoder.eval.generate import GenerationSettings
from dscoder.eval.sandbox import SandboxSettings
from dscoder.eval.settings import CrossfileSettings, EvaluateSettings, FimSettings
from dscoder.tokens.fim import PackFimSettings
from dscoder.instruct.dataset import InstructDataSettings, InstructFile
from dscoder.instruct.mining import MiningSettings
from dscoder.instruct.instruct_pack import InstructPackSettings
from dscoder.train.mixture import MixtureSettings
from dscoder.tokens.pack import PackSettings
from dscoder.tokens.tokenizer import TokenizerSettings
from dscoder.paths import Paths
from dscoder.train.config import TrainSettings
from stages.continue_pretrain import ContinuePretrainSettings
from stages.general_lm import GeneralLmSettings
from stages.instruct import InstructSettings
from stages.long_context import LongContextSettings, RopeSettings

# class: (a section with one bad value, the dotted name the error must start with)
BAD = {
    TokenizerSettings: ({"min_frequency": 0}, "tokenizer.min_frequency"),
    PackFimSettings: ({"rate": 1.5}, "fim.rate"),
    PackSettings: ({"seq_len": 0}, "pack.seq_len"),
    MixtureSettings: ({"train_tokens": 0}, "mixture.train_tokens"),
    IngestSettings: ({"sources": []}, "ingest.sources"),
    FilterSettings: ({"min_alpha_fraction": 1.5}, "filter.min_alpha_fraction"),
    RepoDocsSettings: ({"max_doc_bytes": 0}, "repo_docs.max_doc_bytes"),
    DedupSettings: ({"threshold": 1.5}, "dedup.threshold"),
    DecontamSettings: ({"ngram": 1}, "decontam.ngram"),
    BenchmarkSource: ({"name": "g", "format": "generic", "path": __file__}, "decontam.benchmarks[g].fields"),
    InstructFile: ({"name": 3, "path": "x.jsonl"}, "instruct_data.files.name"),
    InstructDataSettings: ({"max_chars": -1}, "instruct_data.max_chars"),
    MiningSettings: ({"min_doc_words": 0}, "instruct_data.mining.min_doc_words"),
    InstructPackSettings: ({"seq_len": 1}, "instruct.pack.seq_len"),
    FimSettings: ({"humaneval_tasks": -1}, "evaluate.fim.humaneval_tasks"),
    CrossfileSettings: ({"points": -1}, "evaluate.crossfile.points"),
    EvaluateSettings: ({"humaneval_limit": -1}, "evaluate.humaneval_limit"),
    SandboxSettings: ({"timeout_s": 0}, "evaluate.sandbox.timeout_s"),
    GenerationSettings: ({"top_p": 0.0}, "evaluate.top_p"),
    TrainSettings: ({"max_steps": "many"}, "train.max_steps"),
    stages.common.RunnerSettings: ({"workers": 0}, "runner.workers"),
    stages.common.training.LaunchSettings: ({"nnodes": 0}, "launch.nnodes"),
    stages.common.training.TrainingSettings: ({"launch": {"nnodes": 0}}, "train.launch.nnodes"),
    RopeSettings: ({"factor": 0.5}, "long_context.rope.factor"),
    LongContextSettings: ({"rope": {"factor": 0.5}}, "long_context.rope.factor"),
    GeneralLmSettings: ({"vocab_size": 10}, "general_lm.vocab_size"),
    InstructSettings: ({"pack": {"seq_len": 1}}, "instruct.pack.seq_len"),
    ContinuePretrainSettings: ({"mixture": {"seq_len": 1}}, "continue_pretrain.mixture.seq_len"),
    Paths: ({**{k: f"data/{k}" for k in Paths.keys()}, "tokens": "/abs/tokens"}, "paths.tokens"),
}


def all_settings(cls=Settings) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | all_settings(sub)
    return out


def test_every_settings_class_is_covered_and_has_a_home_section():
    assert all_settings() == set(BAD), "a settings class without a bad-value case here"
    assert all(cls.section for cls in BAD)


@pytest.mark.parametrize("cls", sorted(BAD, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_unknown_key_is_named(cls):
    with pytest.raises(ConfigError, match="^" + re.escape(f"{cls.section}.no_such_key: unknown parameter")):
        cls.from_dict({"no_such_key": 1})
    with pytest.raises(ConfigError, match=r"^somewhere\.else\.no_such_key: unknown parameter"):
        cls.from_dict({"no_such_key": 1}, "somewhere.else")


@pytest.mark.parametrize("cls", sorted(BAD, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_bad_value_is_named(cls):
    section, name = BAD[cls]
    with pytest.raises(ConfigError) as err:
        cls.from_dict(section)
    assert str(err.value).startswith(f"{name}: "), str(err.value)


def test_a_section_built_under_another_name_is_named_so(tmp_path):
    with pytest.raises(ConfigError, match=r"^continue_pretrain\.mixture\.seq_len: must be >= 2"):
        MixtureSettings.from_dict({"seq_len": 1}, "continue_pretrain.mixture")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "meta.json").write_text("{}")
    (tokens / "train.bin").write_bytes(b"\0\0")
    with pytest.raises(ConfigError, match=r"^pretrain\.lr: must be > 0"):
        TrainSettings.from_dict({"lr": 0.0, "tokens_dir": str(tokens)}, "pretrain")
    with pytest.raises(ConfigError, match=r"^train\.lr: must be > 0"):
        TrainSettings.from_dict({"lr": 0.0, "tokens_dir": str(tokens)})


def test_validate_returns_none_and_a_good_section_builds():
    for cls in BAD:
        if cls in (BenchmarkSource, InstructFile, IngestSettings, TrainSettings, Paths):
            continue  # no default for a required field, or validate() needs the token files
        settings = cls.from_dict({})
        assert isinstance(settings, cls) and settings.validate() is None


def test_a_training_stage_names_its_own_and_the_trainers_keys(tmp_path):
    from stages.common import load_paths
    from stages.pretrain import pretrain_paths

    PATHS = pretrain_paths(load_paths())
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "meta.json").write_text("{}")
    (tokens / "train.bin").write_bytes(b"\0\0")
    paths = {**{k: str(tmp_path / k) for k in PATHS if k != "tokenizer_dir"}, "tokens_dir": str(tokens)}
    check = stages.common.training.check_training
    with pytest.raises(ConfigError, match=r"^pretrain\.lr: must be > 0"):
        check("pretrain", {"lr": 0.0}, paths)
    with pytest.raises(ConfigError, match=r"^pretrain\.global_batch_size: 8 is not divisible .* world size 3"):
        check("pretrain", {"global_batch_size": 8, "micro_batch_size": 1, "launch": {"nproc_per_node": 3}}, paths)
    with pytest.raises(ConfigError, match=r"^long_context\.launch\.nprocs: unknown parameter"):
        check("long_context", {"launch": {"nprocs": 2}}, paths, validate=False, settings=LongContextSettings)
    with pytest.raises(ConfigError, match=r"^instruct\.checkpoint_dir: set by the stage"):
        check("instruct", {"checkpoint_dir": "elsewhere"}, paths, validate=False, settings=InstructSettings)
    cfg, train, launch = check("general_lm", {"vocab_size": 512, "lr": 1e-3, "launch": {"nnodes": 2}}, paths,
                               settings=GeneralLmSettings)
    assert "vocab_size" not in cfg and "launch" not in cfg and cfg["lr"] == train.lr == 1e-3  # the trainer's keys only
    assert launch.world_size == 2
