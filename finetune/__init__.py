"""finetune: training models on the user's own data.

It owns training text classifiers whose labels become search filters (``classifier``;
applying one is ``searchcore.classifier``), fine-tuning the embedder on query/passage
pairs (``embedder``, with ``mining`` for hard negatives and ``scoring`` for before/after),
training pairs (``pairs``), training data (``data``) and the number format of training
(``precision``). It imports only searchcore; what needs the indexer (scoring on a
re-embedded copy of an index) is handed in by the caller.
"""
