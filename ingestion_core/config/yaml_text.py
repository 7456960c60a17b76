"""Config YAML as text: read safely, strictly and bounded (:func:`parse_yaml`), written back
in the order the models declare (:func:`dump_yaml`). Below the store and access, which both read it.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from ingestion_core.config.secrets import mask
from ingestion_core.config.validation import ConfigIssue

MAX_FILE_BYTES = 512 * 1024


# --- YAML reading: safe, strict, bounded ---------------------------------------------------

class _ConfigYamlError(yaml.MarkedYAMLError):
    """A rule of ours (no aliases, no duplicate keys...), not a syntax error."""


class _StrictLoader(yaml.SafeLoader):
    """safe_load without aliases (no billion-laughs), duplicate keys or non-JSON types."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _ConfigYamlError(
                None, None, "YAML aliases (*name) are not allowed in configs; write the value out", mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise _ConfigYamlError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark
                )
            if key in seen:
                raise _ConfigYamlError(
                    None, None, f"key '{key}' appears twice in one mapping; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


# binary, set, omap and pairs have no JSON equivalent; without a constructor they are refused
_NON_JSON_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("binary", "set", "omap", "pairs")}
_StrictLoader.yaml_constructors = {
    tag: constructor for tag, constructor in yaml.SafeLoader.yaml_constructors.items() if tag not in _NON_JSON_TAGS
}
MAX_DEPTH_MESSAGE = "the YAML is nested too deeply to be a config; flatten it"


def parse_yaml(text: str) -> tuple[Any, list[ConfigIssue]]:
    """Parse YAML text; syntax problems come back as issues located by line."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return None, [ConfigIssue("", f"file is larger than {MAX_FILE_BYTES // 1024} KiB; a config "
                                      "this big is a mistake: split it into several sources")]
    try:
        return yaml.load(text, Loader=_StrictLoader), []
    except yaml.MarkedYAMLError as exc:
        return None, [ConfigIssue(_where(exc), _yaml_problem(exc))]
    except yaml.YAMLError as exc:
        return None, [ConfigIssue("", f"the file is not valid YAML: {mask(exc)}")]
    except RecursionError:
        return None, [ConfigIssue("", MAX_DEPTH_MESSAGE)]


def _where(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    if isinstance(exc, _ConfigYamlError):
        return str(exc.problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and "constructor" in str(exc.problem):
        tag = str(exc.problem).rsplit(" ", 1)[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
        return (f"YAML tags ({tag}) are not allowed in configs; remove the tag and write a plain "
                "value (text, number, true / false, list or mapping)")
    problem = ": ".join(p for p in (exc.context, exc.problem) if p) or "YAML syntax error"
    return f"YAML syntax error: {problem}. Fix the YAML syntax there (check indentation, quotes and colons)"


def dump_yaml(config: BaseModel, header: str = "") -> str:
    data = config.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data = {"version": getattr(config, "version", 1), **data}
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return header + body
