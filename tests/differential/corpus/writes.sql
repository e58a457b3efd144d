-- Writes, each on a fresh copy: RETURNING, then a follow-up (+) reading back what was stored.
INSERT INTO iterations (run_id, step, action, tokens_used) VALUES ('run-99', 0, 'start', 10) RETURNING *;
UPDATE iterations SET state_snapshot = state_snapshot - 'plan' WHERE run_id = 'run-00' RETURNING step, state_snapshot;
+ SELECT step, state_snapshot FROM iterations WHERE run_id = 'run-00' ORDER BY step;
DELETE FROM memories WHERE pinned RETURNING id;
UPDATE runs SET budget = 12.345 WHERE run_id = 'run-00';
+ SELECT budget FROM runs WHERE run_id = 'run-00';
INSERT INTO runs (run_id, agent) VALUES ('run-00', 'dup');
