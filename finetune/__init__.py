"""finetune: training models on the user's own data.

It owns training text classifiers whose labels become search filters (``classifier``;
applying one is ``searchcore.classifier``), fine-tuning the embedder on query/passage
pairs (``embedder``, with ``mining`` for hard negatives and ``scoring`` for before/after),
fine-tuning the generator (``generator``; applying it is ``searchcore.generator``),
training pairs (``pairs``) and generated queries (``queries``), adapting an index's
query encoder without labels (``adapt``: queries from ``writers``, graded by the index's
own search in ``grading``, distilled in ``distill``), the rule that a model no better than its base is
refused (``verdict``), training data (``data``) and the number format of training
(``precision``). It imports only searchcore, and reads an index only through its
``Records`` (``searchcore.snapshot``); what needs the indexer (scoring on a re-embedded
copy of an index, swapping an index's model or query encoder) is handed in by the caller.
"""
