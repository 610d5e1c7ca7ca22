"""Our own checkers for what we publish: the RFC and spec rules, no network, no ../shared."""
