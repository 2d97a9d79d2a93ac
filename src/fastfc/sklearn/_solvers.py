"""scikit-learn's stochastic optimizers (same updates, learning-rate schedules and stopping
rules as ``sklearn.neural_network._stochastic_optimizers``) over the model's flat parameter
buffer, and its L-BFGS run through ``scipy.optimize.minimize``."""
import math

import numpy as np

from fastfc import optim


class SGD:
    """Momentum SGD with scikit-learn's velocity form (v = momentum v - lr g) and its
    'constant', 'invscaling' and 'adaptive' learning rates."""

    def __init__(self, learning_rate_init, lr_schedule, momentum, nesterov, power_t):
        self.learning_rate_init = self.learning_rate = float(learning_rate_init)
        self.lr_schedule, self.power_t = lr_schedule, power_t
        self.momentum, self.nesterov = momentum, nesterov
        self.velocity = None

    def step(self, theta, grad):
        if self.velocity is None:
            self.velocity = np.zeros_like(theta)
        v = self.velocity
        v *= self.momentum
        v -= self.learning_rate * grad
        if self.nesterov:
            theta += self.momentum * v - self.learning_rate * grad
        else:
            theta += v

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class Adam:
    """scikit-learn's Adam, lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon), run
    by fastfc's one-pass Adam: its m_hat / (sqrt(v_hat) + eps) is that update when eps is
    epsilon / sqrt(1 - b2^t)."""

    def __init__(self, learning_rate_init, beta_1, beta_2, epsilon):
        self.epsilon = float(epsilon)
        self.adam = optim.Adam(lr=learning_rate_init, betas=(beta_1, beta_2), eps=epsilon)

    def step(self, theta, grad):
        t = self.adam.t + 1
        self.adam.eps = self.epsilon / math.sqrt(1.0 - self.adam.beta2 ** t)
        self.adam.step(theta, grad)

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


def lbfgs(estimator, loss_and_gradient, theta):
    """Minimize with L-BFGS-B from `theta` (the flat parameter buffer, set in place to the
    result) as scikit-learn does: maxfun=max_fun, maxiter=max_iter, gtol=tol. Returns the
    number of iterations and the final loss."""
    import scipy.optimize
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    from sklearn.utils.optimize import _check_optimize_result

    def fun(x):
        theta[...] = x
        loss, grad = loss_and_gradient()
        return loss, grad.astype(np.float64)

    iprint = 1 if estimator.verbose is True or estimator.verbose >= 1 else -1
    res = scipy.optimize.minimize(
        fun, theta.astype(np.float64), method="L-BFGS-B", jac=True,
        options={"maxfun": estimator.max_fun, "maxiter": estimator.max_iter,
                 "gtol": estimator.tol, **_get_additional_lbfgs_options_dict("iprint", iprint)})
    n_iter = _check_optimize_result("lbfgs", res, estimator.max_iter)
    theta[...] = res.x
    return n_iter, float(res.fun)
