"""validators.alloy_lint: a good pipeline passes; each kind of breakage fails with its finding.

GOOD_CONFIG below is written for these tests (different labels and spelling from the lab's
values on purpose), so the lint is proven on more than one way of writing the same pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from validators import alloy_lint as al

REPO = Path(__file__).resolve().parents[1]

GOOD_CONFIG = r"""
/* Lab 2 pipeline, test edition: node-local pods -> files -> CRI unwrap -> Loki. */
discovery.kubernetes "node_pods" {
  role = "pod"
  selectors {
    role  = "pod"
    field = "spec.nodeName=" + sys.env("HOSTNAME")
  }
}

discovery.relabel "files" {
  targets = discovery.kubernetes.node_pods.targets
  rule {
    action        = "replace"
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_label_app"]
    target_label  = "app"
  }
  // Never ship the agent's own namespace twice over: an unrelated drop rule must not matter.
  rule {
    source_labels = ["__meta_kubernetes_namespace"]
    regex         = "kube-system"
    action        = "drop"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_uid", "__meta_kubernetes_pod_container_name"]
    separator     = "/"
    regex         = `(.+)`
    target_label  = "__path__"
    replacement   = "/var/log/pods/*${1}/*.log"
  }
}

local.file_match "files" {
  path_targets = discovery.relabel.files.output
  sync_period  = "5s"
}

loki.source.file "files" {
  targets    = local.file_match.files.targets
  forward_to = [loki.process.cri.receiver]
}

loki.process "cri" {
  forward_to = [loki.write.lab.receiver]

  stage.cri {}
  stage.label_drop {
    values = ["filename"]
  }
}

loki.write "lab" {
  endpoint {
    url = "http://loki.logging.svc.cluster.local:3100/loki/api/v1/push" // not a comment: "//"
  }
}
"""

LOKI_VALUES = {"deploymentMode": "SingleBinary", "gateway": {"enabled": False}}


def values(config: str = GOOD_CONFIG, **overrides) -> dict:
    state = {"name": "state", "hostPath": {"path": "/var/lib/alloy-test"}}
    data = {
        "controller": {"type": "daemonset", "volumes": {"extra": [state]}},
        "alloy": {
            "mounts": {"varlog": True, "extra": [{"name": "state", "mountPath": "/var/lib/alloy"}]},
            "storagePath": "/var/lib/alloy/data",
            "configMap": {"content": config},
        },
    }
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        data[section][name] = value
    return data


def edit(old: str, new: str, config: str = GOOD_CONFIG) -> str:
    assert old in config, f"test setup: {old!r} is not in the config"
    return config.replace(old, new)


def lint(config: str = GOOD_CONFIG, loki=LOKI_VALUES, **overrides) -> list[al.Finding]:
    return al.lint_values(values(config, **overrides), loki)


def only(findings: list[al.Finding], check: str) -> list[al.Finding]:
    return [f for f in findings if f.check == check]


def test_good_config_passes():
    assert [str(f) for f in lint()] == []


def test_good_config_passes_without_loki_values_against_the_lab_contract():
    assert al.lint_values(values(), None) == []


# --- components and wiring --------------------------------------------------------------------

PROCESS_BLOCK = GOOD_CONFIG[
    GOOD_CONFIG.index('loki.process "cri"') : GOOD_CONFIG.index('loki.write "lab"')
]


def test_missing_component_is_named():
    config = edit(PROCESS_BLOCK, "")
    config = edit("loki.process.cri.receiver", "loki.write.lab.receiver", config)
    (finding,) = only(lint(config), "component")
    assert finding.found == "no loki.process component"
    assert "discovery.kubernetes -> discovery.relabel -> local.file_match" in finding.expected


def test_reference_to_an_undefined_component_and_the_broken_link_are_reported():
    findings = lint(edit("[loki.process.cri.receiver]", "[loki.process.pods.receiver]"))
    (ref,) = only(findings, "reference")
    assert "loki.process.pods.receiver, but no component by that name exists" in ref.found
    assert 'loki.process "cri"' in ref.expected
    (wiring,) = only(findings, "wiring")
    assert wiring.where == 'loki.source.file "files"'
    assert "loki.source.file -> loki.process is broken" in wiring.found
    assert "forward_to = [loki.process.cri.receiver]" in wiring.fix


def test_wrong_exported_field_is_reported():
    findings = lint(edit("discovery.relabel.files.output", "discovery.relabel.files.targets"))
    (ref,) = only(findings, "reference")
    assert "discovery.relabel has no exported field 'targets'" in ref.found
    assert "use discovery.relabel.files.output" in ref.fix
    (wiring,) = only(findings, "wiring")
    assert "discovery.relabel -> local.file_match" in wiring.found


def test_a_component_fed_from_the_wrong_place_breaks_the_chain():
    config = edit(
        "targets    = local.file_match.files.targets",
        'targets    = [{"__path__" = "/var/log/pods/*/*/*.log"}]',
    )
    (wiring,) = only(lint(config), "wiring")
    assert "local.file_match -> loki.source.file is broken" in wiring.found
    assert "set targets = local.file_match.files.targets" in wiring.fix


def test_duplicate_component_labels_are_reported():
    config = GOOD_CONFIG + '\nloki.write "lab" {\n  endpoint {\n    url = "http://x"\n  }\n}\n'
    (dup,) = only(lint(config), "component")
    assert 'a second loki.write "lab"' in dup.found


def test_builtin_file_match_block_may_replace_local_file_match():
    config = edit(
        GOOD_CONFIG[
            GOOD_CONFIG.index('local.file_match "files"') : GOOD_CONFIG.index("loki.source")
        ],
        "",
    )
    config = edit(
        "targets    = local.file_match.files.targets",
        "targets    = discovery.relabel.files.output\n  file_match {\n    enabled = true\n  }",
        config,
    )
    assert lint(config) == []
    disabled = edit("enabled = true", "enabled = false", config)
    assert only(lint(disabled), "component")[0].found == "no local.file_match component"


# --- discovery --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        '"spec.nodeName=" + env("HOSTNAME")',
        '"spec.nodeName=" + coalesce(sys.env("HOSTNAME"), constants.hostname)',
        'string.format("spec.nodeName=%s", sys.env("HOSTNAME"))',
    ],
)
def test_node_local_variants(field):
    config = edit('"spec.nodeName=" + sys.env("HOSTNAME")', field)
    findings = only(lint(config), "node-local")
    if field.startswith("string.format"):
        # Fine for Alloy, but not something this lint evaluates: it says so instead of passing.
        (finding,) = findings
        assert "could not be evaluated" in finding.found
    else:
        assert findings == []


def test_discovery_without_node_selector_is_not_node_local():
    config = edit(
        '  selectors {\n    role  = "pod"\n'
        '    field = "spec.nodeName=" + sys.env("HOSTNAME")\n  }\n',
        "",
    )
    (finding,) = only(lint(config), "node-local")
    assert "no selectors block" in finding.found
    assert 'sys.env("HOSTNAME")' in finding.fix


def test_constants_hostname_alone_is_the_pod_name_not_the_node_name():
    config = edit('sys.env("HOSTNAME")', "constants.hostname")
    (finding,) = only(lint(config), "node-local")
    assert "gives 'spec.nodeName=alloy-x7k2p'" in finding.found


def test_discovery_role_must_be_pod():
    findings = lint(edit('role = "pod"\n  selectors', 'role = "node"\n  selectors'))
    (finding,) = only(findings, "discovery")
    assert finding.found == 'role = "node"'


# --- the path rule ----------------------------------------------------------------------------

PATH_RULE_SOURCES = '["__meta_kubernetes_pod_uid", "__meta_kubernetes_pod_container_name"]'


def test_path_without_uid_matches_other_replicas():
    config = edit(PATH_RULE_SOURCES, '["__meta_kubernetes_pod_container_name"]')
    config = edit('"/var/log/pods/*${1}/*.log"', '"/var/log/pods/*/${1}/*.log"', config)
    (finding,) = only(lint(config), "path")
    assert "another replica's container of the same name (uid missing?)" in finding.found


def test_path_without_container_matches_sibling_containers():
    config = edit(PATH_RULE_SOURCES, '["__meta_kubernetes_pod_uid"]')
    config = edit('"/var/log/pods/*${1}/*.log"', '"/var/log/pods/*${1}/*/*.log"', config)
    (finding,) = only(lint(config), "path")
    assert "another container of the same pod" in finding.found


@pytest.mark.parametrize(
    "replacement",
    [
        '"/var/log/containers/*${1}/*.log"',  # the symlink dir, wrong layout
        '"/var/log/pods/*${1}.log"',  # container dir missing
        '"/var/log/pods/*$1_x/*.log"',  # Go reads $1_x as a group named "1_x": empty
    ],
)
def test_path_that_misses_the_kubelet_layout(replacement):
    config = edit('"/var/log/pods/*${1}/*.log"', replacement)
    (finding,) = only(lint(config), "path")
    assert "does not match its file /var/log/pods/bookstore_catalog-" in finding.found
    assert al.KUBELET_LAYOUT in finding.expected


def test_no_path_rule():
    start = GOOD_CONFIG.index("  rule {\n    source_labels = " + PATH_RULE_SOURCES)
    end = GOOD_CONFIG.index("local.file_match") - 3
    config = GOOD_CONFIG[:start] + GOOD_CONFIG[end:]
    (finding,) = only(lint(config), "path")
    assert "no __path__" in finding.found


def test_keep_rule_that_drops_the_bookstore_is_reported():
    config = edit(
        'regex         = "kube-system"\n    action        = "drop"',
        'regex = "kube-system"\n    action = "keep"',
    )
    (finding,) = only(lint(config), "path")
    assert "drops the sample pod bookstore/" in finding.found


# --- labels -----------------------------------------------------------------------------------


def add_rule(source: str, target: str, config: str = GOOD_CONFIG) -> str:
    rule = f'  rule {{\n    source_labels = ["{source}"]\n    target_label  = "{target}"\n  }}\n'
    return edit("  // Never ship", rule + "  // Never ship", config)


@pytest.mark.parametrize(
    ("source", "label"),
    [
        ("__meta_kubernetes_pod_ip", "pod_ip"),
        ("__meta_kubernetes_pod_uid", "uid"),
        ("__meta_kubernetes_pod_name", "request_id"),
    ],
)
def test_high_cardinality_relabel_labels_are_flagged(source, label):
    (finding,) = only(lint(add_rule(source, label)), "labels")
    assert f"label {label!r}, which has a new value per request" in finding.found
    assert 'discovery.relabel "files" rule at line' in finding.where


def test_high_cardinality_labels_from_loki_process_are_flagged():
    config = edit(
        "  stage.cri {}\n",
        '  stage.cri {}\n  stage.json {\n    expressions = { trace_id = "" }\n  }\n'
        '  stage.labels {\n    values = { trace_id = "", user_id = "" }\n  }\n',
    )
    findings = only(lint(config), "labels")
    assert sorted(f.found.split("'")[1] for f in findings) == ["trace_id", "user_id"]
    assert all("stage.labels" in f.where for f in findings)
    assert "| json | trace_id" in findings[0].fix


def test_any_extra_label_is_flagged():
    (finding,) = only(lint(add_rule("__meta_kubernetes_pod_node_name", "node")), "labels")
    assert finding.found == "extra label 'node'"


def test_external_labels_on_loki_write_count_as_labels():
    config = edit(
        'loki.write "lab" {\n', 'loki.write "lab" {\n  external_labels = { cluster = "kind" }\n'
    )
    (finding,) = only(lint(config), "labels")
    assert finding.found == "extra label 'cluster'"


def test_missing_low_cardinality_label():
    config = edit('target_label  = "app"', 'target_label  = "application"')
    findings = only(lint(config), "labels")
    assert {f.found for f in findings} == {
        "no 'app' label on the sample pod's lines",
        "extra label 'application'",
    }


def test_app_label_from_the_pod_uid_is_flagged():
    config = edit('["__meta_kubernetes_pod_label_app"]', '["__meta_kubernetes_pod_uid"]')
    (finding,) = only(lint(config), "labels")
    assert finding.found.startswith("label app = the pod uid")


def test_filename_kept():
    config = edit('  stage.label_drop {\n    values = ["filename"]\n  }\n', "")
    (finding,) = only(lint(config), "filename")
    assert 'stage.label_drop { values = ["filename"] }' in finding.fix
    assert only(lint(config), "labels") == []


def test_label_keep_also_drops_filename():
    config = edit(
        'stage.label_drop {\n    values = ["filename"]',
        'stage.label_keep {\n    values = ["namespace", "pod", "container", "app", "stream"]',
    )
    assert lint(config) == []


# --- stage.cri --------------------------------------------------------------------------------


def test_no_stage_cri():
    (finding,) = only(lint(edit("  stage.cri {}\n", "")), "cri")
    assert finding.found == "no stage.cri"


def test_docker_stage_instead_of_cri():
    (finding,) = only(lint(edit("stage.cri {}", "stage.docker {}")), "cri")
    assert "kind nodes run containerd" in finding.found


def test_json_before_cri():
    config = edit(
        "  stage.cri {}\n",
        '  stage.json {\n    expressions = { level = "" }\n  }\n  stage.cri {}\n',
    )
    (finding,) = only(lint(config), "cri")
    assert finding.found == "stage.json before stage.cri"


# --- push URL ---------------------------------------------------------------------------------

GOOD_URL = "http://loki.logging.svc.cluster.local:3100/loki/api/v1/push"


@pytest.mark.parametrize(
    "url",
    [
        "http://loki.logging.svc.cluster.local:3101/loki/api/v1/push",
        "http://loki.logging.svc.cluster.local:3100/api/prom/push",
        "http://loki-gateway.logging.svc.cluster.local/loki/api/v1/push",
        "http://loki.monitoring.svc.cluster.local:3100/loki/api/v1/push",
        "https://loki.logging.svc.cluster.local:3100/loki/api/v1/push",
        "localhost:3100/loki/api/v1/push",
    ],
)
def test_wrong_push_url(url):
    (finding,) = only(lint(edit(GOOD_URL, url)), "push-url")
    assert url in finding.found
    assert f'set url = "{GOOD_URL}"' in finding.fix


@pytest.mark.parametrize(
    "url",
    [
        "http://loki.logging:3100/loki/api/v1/push",
        "http://loki.logging.svc:3100/loki/api/v1/push",
        "http://loki.logging.svc.cluster.local.:3100/loki/api/v1/push",
    ],
)
def test_equivalent_in_cluster_names_pass(url):
    assert lint(edit(GOOD_URL, url)) == []


def test_a_short_service_name_resolves_in_the_agents_own_namespace():
    # Alloy runs in `logging-agent`, Loki in `logging` (versions.toml): a bare `loki` would be
    # looked up as logging-agent/loki, which does not exist.
    (finding,) = only(lint(edit(GOOD_URL, "http://loki:3100/loki/api/v1/push")), "push-url")
    assert f'set url = "{GOOD_URL}"' in finding.fix


def test_push_url_follows_the_loki_values():
    gateway = {"deploymentMode": "SingleBinary"}  # the chart's default: gateway enabled
    (finding,) = only(lint(loki=gateway), "push-url")
    assert "http://loki-gateway.logging.svc.cluster.local:80/loki/api/v1/push" in finding.expected
    via_gateway = edit(GOOD_URL, "http://loki-gateway.logging.svc.cluster.local/loki/api/v1/push")
    assert lint(via_gateway, loki=gateway) == []
    renamed = {
        **LOKI_VALUES,
        "fullnameOverride": "logs",
        "loki": {"server": {"http_listen_port": 3200}},
    }
    assert (
        al.loki_target(renamed).url == "http://logs.logging.svc.cluster.local:3200/loki/api/v1/push"
    )


def test_loki_target_for_each_deployment_mode():
    assert al.loki_target(None).url == GOOD_URL
    assert al.loki_target(LOKI_VALUES).url == GOOD_URL
    scalable = {"deploymentMode": "SimpleScalable", "gateway": {"enabled": False}}
    assert al.loki_target(scalable).service == "loki-write"
    distributed = {"deploymentMode": "Distributed", "gateway": {"enabled": False}}
    assert al.loki_target(distributed).service == "loki-distributor"


# --- chart values -----------------------------------------------------------------------------


def test_varlog_not_mounted():
    data = values()
    del data["alloy"]["mounts"]["varlog"]
    (finding,) = al.lint_values(data, LOKI_VALUES)
    assert (finding.check, finding.where) == ("varlog", "alloy.mounts.varlog")
    assert "set alloy.mounts.varlog: true" in finding.fix


def test_deployment_controller():
    (finding,) = lint(controller__type="deployment")
    assert (finding.check, finding.found) == ("controller", "'deployment'")


def test_controller_type_defaults_to_daemonset():
    data = values()
    del data["controller"]["type"]
    assert al.lint_values(data, LOKI_VALUES) == []


def test_positions_in_the_container_filesystem_are_lost_with_the_pod():
    data = values()
    del data["alloy"]["storagePath"]
    (finding,) = al.lint_values(data, LOKI_VALUES)
    assert (finding.check, finding.where) == ("positions", "alloy.storagePath")
    assert (
        finding.found == "'/tmp/alloy', inside the container's own filesystem (lost with the pod)"
    )


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({"emptyDir": {}}, "(emptyDir), which dies with the pod"),
        ({"persistentVolumeClaim": {"claimName": "alloy"}}, None),
    ],
)
def test_positions_volume_must_outlive_the_pod(change, found):
    data = values()
    data["controller"]["volumes"]["extra"] = [{"name": "state", **change}]
    findings = al.lint_values(data, LOKI_VALUES)
    if found is None:
        assert findings == []
    else:
        (finding,) = findings
        assert finding.check == "positions" and found in finding.found


def test_positions_mount_must_be_writable():
    data = values()
    data["alloy"]["mounts"]["extra"][0]["readOnly"] = True
    (finding,) = al.lint_values(data, LOKI_VALUES)
    assert finding.check == "positions" and "readOnly" in finding.found


def test_helm_template_expressions_are_not_guessed_at():
    config = edit('"spec.nodeName=" + sys.env("HOSTNAME")', '"spec.nodeName={{ .Values.node }}"')
    (finding,) = lint(config)
    assert finding.check == "config" and "tpl" in finding.found


def test_the_deprecated_agent_key_is_read_like_alloy():
    data = values()
    data["agent"] = data.pop("alloy")
    assert al.lint_values(data, LOKI_VALUES) == []


def test_values_of_the_wrong_shape_give_findings_not_crashes():
    data = values()
    data["alloy"]["mounts"] = "yes"
    data["controller"] = ["daemonset"]
    checks = {f.check for f in al.lint_values(data, {"gateway": True, "loki": "x"})}
    assert checks == {"varlog", "positions", "push-url"}


def test_source_labels_must_be_a_list():
    config = edit('["__meta_kubernetes_pod_name"]', '"__meta_kubernetes_pod_name"')
    findings = lint(config)
    assert 'source_labels = "__meta_kubernetes_pod_name"' in only(findings, "path")[0].found
    assert "no 'pod' label on the sample pod's lines" in {f.found for f in findings}


def test_empty_content_and_external_configmap():
    (empty,) = lint(config="  \n")
    assert (empty.check, empty.found) == ("config", "empty")
    data = values()
    data["alloy"]["configMap"] = {"create": False, "name": "my-config"}
    (external,) = al.lint_values(data, LOKI_VALUES)
    assert external.where == "alloy.configMap.create"


# --- syntax -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("# a shell-style comment\n", "Alloy comments are // and /* */, not #"),
        ('x = "\\S+"\n', "unknown escape sequence \\S"),
        ('loki.write "extra" {\n', "the block loki.write opened here is not closed"),
        ("/* never closed\n", "block comment /* is never closed"),
        ('loki.write "x" { url = "http://a" "b" }\n', "unexpected 'b' after url = ..."),
    ],
)
def test_syntax_errors_name_the_line(broken, message):
    config = GOOD_CONFIG + broken
    (finding,) = only(lint(config), "syntax")
    assert message in finding.found
    assert finding.where == f"alloy.configMap.content line {GOOD_CONFIG.count(chr(10)) + 1}"


def test_multiline_lists_and_objects_need_a_trailing_comma_like_alloy():
    with pytest.raises(al.AlloySyntaxError, match="missing ',' after the last item") as e:
        al.parse('x "y" {\n  l = [\n    "a",\n    "b"\n  ]\n}\n')
    assert e.value.line == 4
    with pytest.raises(al.AlloySyntaxError, match="before '}'"):
        al.parse('x "y" {\n  o = {\n    k = "v"\n  }\n}\n')
    (block,) = al.parse('x "y" {\n  l = [\n    "a",\n  ]\n  o = { k = "v" }\n}\n')
    assert al.evaluate(block.attrs["l"], {}) == ["a"]


def test_top_level_attributes_and_chained_calls_parse():
    blocks = al.parse('log_level = "debug"\nv = (a.b)(1, c[2 * d]).e\nb {\n}\n')
    assert [b.name for b in blocks] == ["b"]


def test_tokenizer_keeps_comment_markers_inside_strings():
    tokens = al.tokenize('url = "http://a//b/*c*/" // trailing\nr = `raw\\S`')
    assert [t.value for t in tokens if t.kind == "STRING"] == ["http://a//b/*c*/", "raw\\S"]


def test_parser_reads_blocks_attributes_and_expressions():
    (block,) = al.parse(
        'a.b "lbl" {\n  x = [1, "two", {k = true}]\n  y = f("v") + "w"\n'
        "  inner {\n    z = c.d.e\n  }\n}\n"
    )
    assert (block.name, block.label, block.line) == ("a.b", "lbl", 1)
    assert al.evaluate(block.attrs["x"], {}) == [1, "two", {"k": True}]
    assert al.render(block.attrs["y"]) == 'f("v") + "w"'
    assert [r.path for r in al._all_refs(block)] == ["c.d.e"]


# --- relabel and glob semantics ---------------------------------------------------------------


def test_relabel_actions():
    labels = {"__meta_a": "X", "b": "y"}
    assert al.relabel(labels, {"source_labels": ["__meta_a"], "target_label": "t"})["t"] == "X"
    lowered = al.relabel(
        labels, {"source_labels": ["__meta_a"], "target_label": "t", "action": "lowercase"}
    )
    assert lowered["t"] == "x"
    assert al.relabel(labels, {"source_labels": ["b"], "regex": "y", "action": "drop"}) is None
    assert al.relabel(labels, {"source_labels": ["b"], "regex": "z", "action": "keep"}) is None
    mapped = al.relabel(labels, {"action": "labelmap", "regex": "__meta_(.+)"})
    assert mapped["a"] == "X"
    assert "b" not in al.relabel(labels, {"action": "labeldrop", "regex": "b"})
    # An empty replacement removes the target label, as in Prometheus.
    assert "b" not in al.relabel(
        labels, {"source_labels": ["b"], "target_label": "b", "replacement": ""}
    )
    hashed = al.relabel(
        labels, {"source_labels": ["b"], "target_label": "h", "action": "hashmod", "modulus": 4}
    )
    assert hashed["h"] in {"0", "1", "2", "3"}


def test_go_style_expansion():
    import re

    match = re.fullmatch(r"(?P<ns>\w+)/(\w+)", "bookstore/catalog")
    assert al._expand("$1-${2}-$ns-$$", match) == "bookstore-catalog-bookstore-$"
    assert al._expand("$1x", match) == ""  # Go reads the group name "1x"


def test_glob_semantics_follow_doublestar():
    assert al.glob_regex("/var/log/pods/*/c/*.log").fullmatch("/var/log/pods/p/c/0.log")
    assert not al.glob_regex("/var/log/pods/*.log").fullmatch("/var/log/pods/p/c/0.log")
    assert al.glob_regex("/var/log/**/*.log").fullmatch("/var/log/pods/p/c/0.log")
    assert al.glob_regex("/x/*.{log,gz}").fullmatch("/x/1.gz")


# --- command line -----------------------------------------------------------------------------


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_clean(tmp_path, capsys):
    alloy = write_yaml(tmp_path / "alloy.yaml", values())
    loki = write_yaml(tmp_path / "loki.yaml", LOKI_VALUES)
    assert al.main([str(alloy), "--loki-values", str(loki)]) == 0
    out = capsys.readouterr().out
    assert 'discovery.kubernetes "node_pods" -> discovery.relabel "files"' in out
    assert f"pushes to {GOOD_URL}" in out


def test_cli_findings_exit_1_and_json(tmp_path, capsys):
    alloy = write_yaml(tmp_path / "alloy.yaml", values(controller__type="statefulset"))
    loki = write_yaml(tmp_path / "loki.yaml", LOKI_VALUES)
    assert al.main([str(alloy), "--loki-values", str(loki)]) == 1
    assert "FAIL [controller] controller.type" in capsys.readouterr().out
    assert al.main([str(alloy), "--loki-values", str(loki), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["findings"][0]["check"] == "controller"


def test_cli_bad_input_exits_2(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("alloy:\n  configMap:\n content: x\n   y: [\n")
    assert al.main([str(broken)]) == 2
    assert f"{broken}:" in capsys.readouterr().err
    assert al.main([str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot be read: No such file" in capsys.readouterr().err
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n")
    assert al.main([str(listing)]) == 2
    assert "must be a mapping" in capsys.readouterr().err


LAB_ALLOY = REPO / "manifests" / "logging" / "alloy-values.yaml"
LAB_LOKI = REPO / "manifests" / "logging" / "loki-values.yaml"


@pytest.mark.skipif(
    not LAB_ALLOY.is_file(), reason="manifests/logging/alloy-values.yaml not written yet"
)
def test_the_lab_alloy_values_lint_clean():
    loki = yaml.safe_load(LAB_LOKI.read_text()) if LAB_LOKI.is_file() else None
    findings = al.lint_values(yaml.safe_load(LAB_ALLOY.read_text()), loki)
    assert [str(f) for f in findings] == []


@pytest.mark.skipif(
    not LAB_ALLOY.is_file(), reason="manifests/logging/alloy-values.yaml not written yet"
)
def test_cli_defaults_to_the_values_named_in_versions_toml(capsys):
    assert al.main([]) == 0
    assert "alloy-values.yaml" in capsys.readouterr().out
