"""Read-only queries of the dashboard, a module per page or part of one. Each page costs a bounded
number of queries, each one served by an index; none counts the whole log."""
