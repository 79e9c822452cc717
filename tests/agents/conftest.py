"""Fixtures of the agent tests: the rule-based teacher (`reasonact.agents.teacher`) as an LM."""

from __future__ import annotations

import pytest

from reasonact.agents.policy import ScriptedLM
from reasonact.agents.teacher import teacher_lm


@pytest.fixture
def rule_lm() -> ScriptedLM:
    return teacher_lm()
