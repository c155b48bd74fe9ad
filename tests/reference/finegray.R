# Fine-Gray subdistribution hazard regression with cmprsk::crr, fitted tightly
# (gtol = 1e-12, maxiter = 200) so the fixture holds the maximiser itself.
# crr is run twice, on the covariates as given and centred at their means
# (coefficients, variance and log pseudo-likelihood are mathematically the same),
# and the fit whose gradient is smaller (crr's criterion max |U_j| max(|b_j|, 1))
# is emitted: crr's line search gives up (converged = FALSE) once the likelihood
# no longer changes in double precision, which happens at |U| ~ 1e-5 for pbc
# uncentred (age ~ 50) and at |U| ~ 1e-7 for lung centred. The as-given fit is
# emitted too (coef_raw, se_raw, converged_raw); gradient = the chosen statistic.
# Per case: coef, se = sqrt(diag(var)), z, p = 2 * pnorm(-|z|) (summary.crr
# prints 2 * (1 - pnorm(|z|)), equal to double precision except far in the
# tail), var (column-major), loglik, loglik_null, n, converged.
# Usage: cd tests/reference && Rscript finegray.R .
source("_common.R")
suppressPackageStartupMessages({ library(survival); library(cmprsk) })

fit_crr <- function(case, time, status, cov, failcode) {
  cov <- as.matrix(cov)
  raw <- crr(time, status, cov1 = cov, failcode = failcode, cencode = 0,
             gtol = 1e-12, maxiter = 200)
  emit(case, "coef_raw", raw$coef)
  emit(case, "se_raw", sqrt(diag(raw$var)))
  emit(case, "converged_raw", as.numeric(raw$converged))
  cen <- crr(time, status, cov1 = scale(cov, scale = FALSE), failcode = failcode, cencode = 0,
             gtol = 1e-12, maxiter = 200)
  grad <- function(f) max(abs(f$score) * pmax(abs(f$coef), 1))
  f <- if (grad(cen) < grad(raw)) cen else raw
  emit(case, "centred", as.numeric(grad(cen) < grad(raw)))
  emit(case, "gradient", grad(f))
  se <- sqrt(diag(f$var))
  z <- f$coef / se
  emit(case, "coef", f$coef)
  emit(case, "se", se)
  emit(case, "z", z)
  emit(case, "p", 2 * pnorm(-abs(z)))
  emit(case, "var", f$var)
  emit(case, "loglik", f$loglik)
  emit(case, "loglik_null", f$loglik.null)
  emit(case, "n", f$n)
  emit(case, "converged", as.numeric(f$converged))
  invisible(f)
}

# PBC: status 1 = transplant, 2 = death; covariates age, log(bili), albumin, edema.
pbc <- read_dataset("pbc")
pbc_cov <- data.frame(age = pbc$age, log_bili = log(pbc$bili), albumin = pbc$albumin,
                      edema = pbc$edema)
fit_crr("pbc_death", pbc$time, pbc$status, pbc_cov, failcode = 2)
fit_crr("pbc_transplant", pbc$time, pbc$status, pbc_cov, failcode = 1)
# one covariate
fit_crr("pbc_death_age", pbc$time, pbc$status, pbc_cov["age"], failcode = 2)
# extreme ties and time 0: whole 1000-day periods, so 0..4, with censorings,
# deaths and transplants at 0 (crr's G at t = 0 is G(0), not G(0-) = 1)
fit_crr("pbc_coarse", floor(pbc$time / 1000), pbc$status, pbc_cov[c("age", "log_bili")],
        failcode = 2)

# MGUS2 (months, heavy ties): complete cases of age, male, mspike. crr's na.omit
# drops the same rows the Python tests drop with dropna(subset=[time, cause, age, male, mspike]).
mgus <- read_dataset("mgus2")
keep <- complete.cases(mgus[, c("time", "cause", "age", "male", "mspike")])
mg <- mgus[keep, ]
emit("mgus2_progression", "n_dropped", sum(!keep))
fit_crr("mgus2_progression", mg$time, mg$cause, mg[, c("age", "male", "mspike")], failcode = 1)
fit_crr("mgus2_death", mg$time, mg$cause, mg[, c("age", "male", "mspike")], failcode = 2)

# No competing events (lung: 1 = death, 0 = censored): crr is Cox with Breslow
# ties, and crr's variance is coxph's robust sandwich (the psi term vanishes).
lung <- read_dataset("lung")
lung_cov <- lung[, c("age", "sex")]
fit_crr("lung_nocompeting", lung$time, lung$event, lung_cov, failcode = 1)
cx <- coxph(Surv(time, event) ~ age + sex, data = lung, ties = "breslow", robust = TRUE,
            control = coxph.control(eps = 1e-10, iter.max = 100))
emit("lung_nocompeting", "cox_coef", coef(cx))
emit("lung_nocompeting", "cox_robust_se", sqrt(diag(cx$var)))
emit("lung_nocompeting", "cox_loglik", cx$loglik)

write_fixture("finegray", pkgs = c("survival", "cmprsk"))
