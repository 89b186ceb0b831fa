"""darknet's cfg grammar (spec section 1), quirk by quirk."""

from __future__ import annotations

import pytest

import yolo_io

NET = "[net]\nwidth=8\nheight=8\nchannels=3\n"


def parse(text: str) -> yolo_io.Config:
    return yolo_io.parse_cfg(text)


def test_whitespace_is_deleted_everywhere_not_trimmed() -> None:
    cfg = parse("[ net ]\nwid th = 8\nheight=\t8\nchannels=3\n[conv olutional]\nfil ters = 1 6\nsize=1\n")
    assert cfg.input_shape == (3, 8, 8)
    assert cfg[0].type == "convolutional"
    assert cfg[0].options["filters"] == "16"
    assert cfg[0].output_shape == (16, 8, 8)


def test_crlf_line_endings() -> None:
    cfg = parse(NET.replace("\n", "\r\n") + "[maxpool]\r\nsize=2\r\nstride=2\r\n")
    assert cfg[0].output_shape == (3, 4, 4)


def test_inline_comment_is_part_of_the_value() -> None:
    # atoi stops at '#': filters is 4; the activation string keeps '#x' and is
    # unknown, so darknet uses relu (and we warn).
    with pytest.warns(yolo_io.CfgWarning, match=r"activation 'leaky#x'.*relu"):
        cfg = parse(NET + "[convolutional]\nfilters=4#four\nsize=1\nactivation=leaky#x\n")
    assert cfg[0].output_shape == (4, 8, 8)
    assert cfg[0].activation == "relu"
    assert cfg[0].options["activation"] == "leaky#x"


def test_whole_line_comments_and_blank_lines() -> None:
    cfg = parse(NET + "# a comment\n; another\n\n[convolutional]\n#filters=9\nfilters=2\nsize=1\n")
    assert cfg[0].output_shape == (2, 8, 8)


def test_first_copy_of_a_key_wins_and_later_copies_warn() -> None:
    with pytest.warns(yolo_io.CfgWarning, match=r":7: unused option 'filters=9'"):
        cfg = parse(NET + "[convolutional]\nfilters=2\nfilters=9\nsize=1\n")
    assert cfg[0].output_shape == (2, 8, 8)
    assert cfg[0].options["filters"] == "2"
    assert cfg[0].option_line("filters") == 6


def test_key_without_equals_reads_as_absent_and_shadows_later_copies() -> None:
    with pytest.warns(yolo_io.CfgWarning, match="has no '='"):
        cfg = parse(NET + "[convolutional]\nfilters\nfilters=9\nsize=1\n")
    assert cfg[0].output_shape == (1, 8, 8)  # default filters=1
    assert "filters" not in cfg[0].options


def test_empty_value_line_is_dropped() -> None:
    with pytest.warns(yolo_io.CfgWarning, match="empty value"):
        cfg = parse(NET + "[convolutional]\nfilters=\nsize=1\n")
    assert cfg[0].output_shape == (1, 8, 8)


def test_unknown_option_is_kept_and_warned_with_its_line() -> None:
    with pytest.warns(yolo_io.CfgWarning, match=r"<string>:7: unused option 'colour=red' in \[convolutional\]"):
        cfg = parse(NET + "[convolutional]\nfilters=2\ncolour=red\nsize=1\n")
    assert cfg[0].options["colour"] == "red"
    assert any(":7:" in w for w in cfg.warnings)


def test_option_before_first_section_is_an_error() -> None:
    with pytest.raises(yolo_io.CfgError, match=r"<string>:1: option 'width=8' comes before") as e:
        parse("width=8\n" + NET)
    assert e.value.line == 1


def test_first_section_must_be_net() -> None:
    with pytest.raises(yolo_io.CfgError, match=r"first section is \[convolutional\]") as e:
        parse("\n[convolutional]\nfilters=1\n" + NET)
    assert e.value.line == 2


@pytest.mark.parametrize("name", ["[gaussian_yolo]", "[net]#x", "[Convolutional]", "[implicit_add]"])
def test_unknown_section_names_its_line(name: str) -> None:
    text = NET + "[convolutional]\nfilters=1\n\n" + name + "\n"
    with pytest.raises(yolo_io.CfgError, match="unknown section") as e:
        parse(text)
    assert e.value.line == 8
    assert name.replace(" ", "") in str(e.value)


def test_second_net_section_is_an_error() -> None:
    with pytest.raises(yolo_io.CfgError, match="only the first section may be"):
        parse(NET + "[convolutional]\n" + NET)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("[conv]", "convolutional"), ("[conn]", "connected"), ("[max]", "maxpool"),
     ("[avg]", "avgpool"), ("[soft]", "softmax"), ("[lrn]", "normalization"),
     ("[silence]", "empty"), ("[local_avg]", "local_avgpool")],
)
def test_section_aliases(alias: str, canonical: str) -> None:
    cfg = parse(NET + alias + "\n")
    assert cfg[0].type == canonical
    assert cfg[0].section == alias


def test_network_is_an_alias_of_net() -> None:
    assert parse("[network]\nwidth=2\nheight=2\nchannels=1\n[avgpool]\n")[0].output_shape == (1, 1, 1)


def test_c_atoi_semantics() -> None:
    # +3 -> 3; "1.9" -> 1; "0x2" -> 0, which darknet would divide by: an error here
    with pytest.raises(yolo_io.CfgError, match="stride=0"):
        parse(NET + "[convolutional]\nfilters=+3\nsize=1.9\nstride=0x2\n")
    ok = parse(NET + "[convolutional]\nfilters=+3\nsize=1.9\n")
    assert ok[0].output_shape == (3, 8, 8)
    assert ok[0].param_shapes["weights"] == (3, 3, 1, 1)


def test_no_input_size_is_an_error() -> None:
    with pytest.raises(yolo_io.CfgError, match="No input parameters supplied"):
        parse("[net]\nbatch=1\n[avgpool]\n")


def test_no_layers_is_an_error() -> None:
    with pytest.raises(yolo_io.CfgError, match="no layers"):
        parse(NET)


def test_empty_text_is_an_error() -> None:
    with pytest.raises(yolo_io.CfgError, match="no sections"):
        parse("# only a comment\n\n")


def test_binary_garbage_is_a_cfg_error() -> None:
    with pytest.raises(yolo_io.CfgError):
        parse("\x00\x01\x02garbage\n[")


def test_missing_cfg_file_is_file_not_found(tmp_path: object) -> None:
    with pytest.raises(FileNotFoundError):
        yolo_io.parse_cfg("/nonexistent/dir/model.cfg")


def test_cfg_path_and_text_and_config_are_accepted(tmp_path: pytest.TempPathFactory) -> None:
    import pathlib

    p = pathlib.Path(str(tmp_path)) / "m.cfg"
    p.write_text(NET + "[avgpool]\n")
    a = yolo_io.parse_cfg(p)
    b = yolo_io.parse_cfg(str(p))
    c = yolo_io.parse_cfg(NET + "[avgpool]\n")
    assert a.path == str(p) and b.path == str(p) and c.path == "<string>"
    assert yolo_io.parse_cfg(a) is a
    with pytest.raises(TypeError):
        yolo_io.parse_cfg(b"[net]\n")
