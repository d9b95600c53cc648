"""params.yaml is checked against the schema before any work, every problem reported at once; profiles apply
over it."""
import shutil

import pytest
import yaml

from embstudy import params, paths, use_profile


def write(tmp_path, mutate):
    raw = yaml.safe_load(paths.PARAMS.read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_committed_params_are_valid():
    p = params.load()
    assert p.profile == "demo" and set(p.models) == {"camembert", "flaubert", "e5-small"}
    e5 = p.models["e5-small"].checkpoint
    assert params.packaged(e5) and not params.looks_local(e5)


def test_a_models_own_values_go_over_the_stages_and_are_checked(tmp_path):
    p = params.load()
    own, shared = params.for_model(p, "e5-small", "finetune"), params.for_model(p, "flaubert", "finetune")
    assert shared == p.finetune and own.batch_size == p.finetune.batch_size
    written = p.models["e5-small"].finetune
    assert (own.epochs, own.seeds) == (written["epochs"], written["seeds"])
    camembert = params.for_model(p, "camembert", "finetune")
    assert camembert.lr == p.models["camembert"].finetune["lr"] != p.finetune.lr

    def mutate(raw):
        raw["models"]["e5-small"]["finetune"]["lrr"] = 1e-4  # a typo
        raw["models"]["flaubert"]["extract"] = {"reviews": 0}

    with pytest.raises(params.ParamsError) as err:
        params.load(write(tmp_path, mutate))
    assert "models.e5-small.finetune: lrr: extra inputs are not permitted" in str(err.value)
    assert "models.flaubert.extract: reviews: input should be greater than 0" in str(err.value)

    def fewer(raw):
        raw["models"]["e5-small"]["extract"]["reviews"] = 100

    with pytest.raises(params.ParamsError, match="extract.baseline_sentences = 200 exceeds "
                                                 "models.e5-small.extract.reviews = 100; models.e5-small.extract."
                                                 "cka_sentences = 400 exceeds models.e5-small.extract.reviews"):
        params.load(write(tmp_path, fewer))


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

    with pytest.raises(params.ParamsError, match="models.flaubert: needs a checkpoint, or an arch and an encoder spec"):
        params.load(write(tmp_path, mutate))


def test_a_checkpoint_folder_that_is_not_there(tmp_path):
    def mutate(raw):
        raw["models"]["camembert"]["checkpoint"] = "checkpoints/nope"

    with pytest.raises(params.ParamsError, match="models.camembert.checkpoint: no folder checkpoints/nope"):
        params.load(write(tmp_path, mutate))


def test_the_shipped_encoders_refuse_another_language_and_encoders_from_scratch_take_it(tmp_path):
    def mutate(raw):
        raw["data"]["language"] = "jp"

    with pytest.raises(params.ParamsError, match="models.camembert.checkpoint: checkpoints/camembert was "
                                                 "pre-trained here on fr reviews, but data.language = jp"):
        params.load(write(tmp_path, mutate))

    def from_scratch(raw):
        mutate(raw)
        for m in raw["models"].values():
            if m.get("arch"):  # the tiny encoders; e5-small is multilingual
                m["checkpoint"] = None

    assert params.load(write(tmp_path, from_scratch)).data.language == "jp"  # the synth stage writes Japanese


def test_cross_field_problems_are_all_listed_at_once(tmp_path):
    def mutate(raw):
        raw["finetune"]["seeds"] = [1, 1]
        raw["finetune"]["train_size"] = 10**6  # past the demo corpus (6 x labelled_per_class)
        raw["extract"]["cka_sentences"] = 10**6
        raw["probe"]["layers"] = [99]  # past the demo encoders' depth
        raw["data"]["language"] = "en"  # flaubert's shipped encoder learned French
        raw["models"]["camembert"]["checkpoint"] = None  # trained from scratch: its encoder spec is checked
        raw["models"]["camembert"]["encoder"]["heads"] = 5  # 128 is not a multiple of 5
        raw["pretrain"]["heldout"] = 10**6

    with pytest.raises(params.ParamsError) as err:
        params.load(write(tmp_path, mutate))
    msg = str(err.value)
    assert "\n" not in msg
    for culprit in ("finetune.seeds: repeated seed", "finetune.train_size = 1000000 exceeds",
                    "extract.cka_sentences = 1000000 exceeds", "probe.layers: every listed layer is past models.camembert",
                    ("models.flaubert.checkpoint: checkpoints/flaubert was pre-trained here on fr reviews, but "
                     "data.language = en: set it to null"),
                    "models.camembert.encoder: hidden 128 is not a multiple of heads 5", "pretrain.heldout"):
        assert culprit in msg, culprit


@pytest.mark.parametrize("conf, profile, models, language", [
    ("paper", "paper", ["camembert", "flaubert"], "fr"),
    ("multilingual", "multilingual", ["xlmr", "mbert"], "fr"),
    ("english", "english", ["bert", "roberta"], "en"),
    ("english-small", "demo", ["minilm", "e5-small"], "en")])
def test_each_profile_applies_over_params_yaml_and_names_its_own_models(tmp_path, conf, profile, models,
                                                                         language):
    target = tmp_path / "params.yaml"
    shutil.copyfile(paths.PARAMS, target)
    use_profile.apply(paths.ROOT / "conf" / f"{conf}.yaml", target)
    p = params.load(target)
    assert (p.profile, list(p.models), p.data.language) == (profile, models, language)
    assert all(m.checkpoint and m.encoder is None for m in p.models.values())  # nothing to pre-train
    assert p.finetune.max_majority_share == params.load().finetune.max_majority_share  # unnamed values stay
    assert "# the part of Webis-CLS-10 read" in target.read_text()  # comments kept


def test_a_profile_naming_an_unknown_key_is_refused(tmp_path):
    target, override = tmp_path / "params.yaml", tmp_path / "bad.yaml"
    shutil.copyfile(paths.PARAMS, target)
    override.write_text("finetune:\n  lr_schedule: cosine\n")
    with pytest.raises(params.ParamsError, match="names 'lr_schedule', which params.yaml does not have"):
        use_profile.apply(override, target)
    assert target.read_bytes() == paths.PARAMS.read_bytes()


def test_a_profile_model_gets_every_key_dvc_yaml_names(tmp_path):
    """dvc.yaml declares models.<m>.checkpoint, .finetune and .extract: a profile naming only a checkpoint
    still writes them all (DVC refuses a stage whose declared param is missing)."""
    target, override = tmp_path / "params.yaml", tmp_path / "one.yaml"
    shutil.copyfile(paths.PARAMS, target)
    override.write_text("profile: english\ndata:\n  source: data/x.tar.gz\n  language: en\n"
                        "models:\n  bert:\n    checkpoint: bert-base-uncased\n")
    use_profile.apply(override, target)
    assert yaml.safe_load(target.read_text())["models"] == {
        "bert": {"checkpoint": "bert-base-uncased", "encoder": None, "finetune": None, "extract": None}}
