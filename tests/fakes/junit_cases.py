"""Reading a JUnit XML report as CI tools do: checked against the schema Jenkins' and GitLab's readers follow
(tests/reports/schemas/junit.xsd), then parsed by junitparser."""

from __future__ import annotations

from pathlib import Path

import junitparser
import xmlschema

SCHEMA = xmlschema.XMLSchema(Path(__file__).resolve().parents[1] / "reports" / "schemas" / "junit.xsd")


def read_cases(xml: str, tmp_path: Path) -> list[tuple[str, str, str]]:
    """(classname, name, state) of every case, as junitparser reads the file; the file is schema-valid."""
    SCHEMA.validate(xml)
    path = tmp_path / "perfgate-junit.xml"
    path.write_text(xml, encoding="utf-8")
    cases = []
    for suite in junitparser.JUnitXml.fromfile(str(path)):
        for case in suite:
            state = "failure" if case.is_failure else "skipped" if case.is_skipped else \
                "error" if case.is_error else "passed"
            cases.append((case.classname, case.name, state))
    return cases
