-- Workers are woken by the code that queues their work (shared/src/wakeup.rs): in-process
-- after the commit on the hot paths, NOTIFY only where work crosses processes. A NOTIFY in
-- every outbox and job insert serialized the commits of intake, the provisioner and the
-- notifier behind one database-wide lock.
DROP TRIGGER outbox_inserted ON outbox;
DROP FUNCTION outbox_notify();
DROP TRIGGER jobs_queued ON jobs;
DROP FUNCTION jobs_notify();
