"""params.yaml is checked against the schema before any work, every problem reported at once."""
import pytest
import yaml

from embstudy import params, paths


def write(tmp_path, mutate):
    raw = yaml.safe_load(paths.PARAMS.read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_committed_params_are_valid():
    p = params.load()
    assert p.profile == "demo" and set(p.models) == {"camembert", "flaubert"}


def test_every_problem_is_listed_in_one_message(tmp_path):
    def mutate(raw):
        raw["finetune"]["epochs"] = "three"  # wrong type
        raw["probe"]["typo_key"] = 1  # unknown key
        raw["pretrain"]["lr"] = -1.0  # out of range
        raw["models"]["camembert"]["arch"] = "gpt2"  # unknown architecture

    with pytest.raises(params.ParamsError) as err:
        params.load(write(tmp_path, mutate))
    msg = str(err.value)
    assert "\n" not in msg
    for culprit in ("finetune.epochs", "probe.typo_key", "pretrain.lr", "models.camembert.arch"):
        assert culprit in msg


def test_missing_section_and_unreadable_file(tmp_path):
    with pytest.raises(params.ParamsError, match="extract: field required"):
        params.load(write(tmp_path, lambda raw: raw.pop("extract")))
    with pytest.raises(params.ParamsError, match="cannot read params"):
        params.load(tmp_path / "absent.yaml")


def test_a_model_needs_a_checkpoint_or_an_encoder(tmp_path):
    def mutate(raw):
        raw["models"]["flaubert"]["checkpoint"] = None  # trained here: needs an encoder spec
        raw["models"]["flaubert"]["encoder"] = None

    with pytest.raises(params.ParamsError, match="models.flaubert: needs a checkpoint or an encoder spec"):
        params.load(write(tmp_path, mutate))


def test_a_checkpoint_folder_that_is_not_there(tmp_path):
    def mutate(raw):
        raw["models"]["camembert"]["checkpoint"] = "checkpoints/nope"

    with pytest.raises(params.ParamsError, match="models.camembert.checkpoint: no folder checkpoints/nope"):
        params.load(write(tmp_path, mutate))


def test_cross_field_problems_are_all_listed_at_once(tmp_path):
    def mutate(raw):
        raw["finetune"]["seeds"] = [1, 1]
        raw["finetune"]["train_size"] = 10**6  # past the demo corpus (6 x labelled_per_class)
        raw["extract"]["cka_sentences"] = 10**6
        raw["probe"]["layers"] = [1, 99]  # past the demo encoders' depth
        raw["models"]["camembert"]["checkpoint"] = None  # trained from scratch: its encoder spec is checked
        raw["models"]["camembert"]["encoder"]["heads"] = 5  # 128 is not a multiple of 5
        raw["pretrain"]["heldout"] = 10**6

    with pytest.raises(params.ParamsError) as err:
        params.load(write(tmp_path, mutate))
    msg = str(err.value)
    assert "\n" not in msg
    for culprit in ("finetune.seeds: repeated seed", "finetune.train_size = 1000000 exceeds",
                    "extract.cka_sentences = 1000000 exceeds", "probe.layers: layer 99 is past models.camembert",
                    "models.camembert.encoder: hidden 128 is not a multiple of heads 5", "pretrain.heldout"):
        assert culprit in msg, culprit
