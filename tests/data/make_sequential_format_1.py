"""Writes tests/data/sequential-format-1.npz with fastfc at commit 72a8584 (the format
of save() before the model package), and the values a reader must reproduce."""
import numpy as np
import fastfc

rng = np.random.default_rng(0)
X = rng.standard_normal((60, 4)).astype(np.float32)
y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
model = fastfc.Sequential([fastfc.Dense(4, 8, activation="relu"), fastfc.BatchNorm(8),
                           fastfc.Dropout(0.25), fastfc.Dense(8, 5), fastfc.LeakyReLU(0.2),
                           fastfc.Dense(5, 3)],
                          optimizer=fastfc.optim.Adam(lr=0.01, schedule=fastfc.optim.cosine_schedule(4, 0.1)),
                          seed=3)
model.fit(X, y, epochs=2, batch_size=16, verbose=0)
model.save("tests/data/sequential-format-1.npz")
proba = model.predict_proba(X)
model.fit(X, y, epochs=1, batch_size=16, verbose=0)
np.savez("tests/data/sequential-format-1-expected.npz", X=X, y=y, proba=proba,
         theta_after_one_more_epoch=model._theta)
