import json

import pytest

from utils.config.overrides import load_config_file, parse_override
from utils.errors import ConfigError


def test_parse_override_reads_json_and_model_lists():
    assert parse_override("epochs=30") == ("epochs", 30)
    assert parse_override("weights=null") == ("weights", None)
    assert parse_override("data_path=/tmp/x.tar.gz") == ("data_path", "/tmp/x.tar.gz")
    assert parse_override("models=custom_cnn,vgg16") == ("models", ["custom_cnn", "vgg16"])
    assert parse_override("seeds=0,1") == ("seeds", [0, 1])
    assert parse_override("seeds=[2]") == ("seeds", [2])
    assert parse_override("seeds=a,b") == ("seeds", "a,b")  # refused by resolve_args
    assert parse_override('model_options={"lenet": {"dropout": 0.1}}')[1] == {"lenet": {"dropout": 0.1}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("epochs")


def test_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3}))
    assert load_config_file(str(path)) == {"epochs": 3}
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config_file(str(path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(str(tmp_path / "missing.json"))
