"""`tdn`: darknet's verbs (classify, summary, bench, valid, ...) as a command line."""
