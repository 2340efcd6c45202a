"""Post-release control: risk scoring of declarations and cameral customs audit cases (seeds 001, 004).

- Risk scoring (risk_*.py): indices learned from the declarations stream, indicators, revenue at risk,
  selection within the day's audit capacity; `customs-stream risk`.
- Audit cases (cases, calendar, events): the case state machine with Kazakhstan working-day deadlines;
  `customs-stream audit`.
"""
