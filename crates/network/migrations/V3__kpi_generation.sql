-- A counter that every recomputation of KPIs bumps in its transaction, so an in-memory copy
-- of the KPIs (index::KpiIndex) knows exactly when it is out of date, however many other
-- commits (files' partial state, jobs) happen in between.
CREATE TABLE network_kpi_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO network_kpi_generation (id, generation) VALUES (1, 0);
