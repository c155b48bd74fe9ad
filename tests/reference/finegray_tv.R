# Fine-Gray regression with time-varying effects: cmprsk::crr(..., cov2 =, tf =),
# the effect of each cov2 column multiplied by a function of time evaluated at the
# sorted distinct failure times of the cause of interest (crr's uftime). Fitted
# tightly (gtol = 1e-12, maxiter = 200) and, as finegray.R, twice: on the covariates
# as given and centred at their means (mathematically the same fit, also with cov2:
# the centring shifts each failure time's linear predictors by a constant); the fit
# with the smaller gradient max |U_j| max(|b_j|, 1) is emitted, after up to 3 Newton steps
# of crr's own score and information (see fit_tv) when they reduce that gradient.
#
# Cases (the Python tests build the same data from datasets/*.csv):
#   mgus2_death_logt     complete cases of mgus2 (time, cause, age, male, mspike), death
#                        (cause 2): cov1 = age, cov2 = male, tf = log(t).
#   pbc_death_step       pbc, death (status 2): cov1 = log(bili), cov2 = age,
#                        tf = (t > median of the failure times).
#   pbc_death_two_cengroup  pbc, death: cov1 = (age, log(bili)), cov2 = (log(bili), albumin),
#                        tf = (log(t), t > 1500), cengroup = female.
#   pbc_transplant_cov2only pbc, transplant (status 1): no cov1, cov2 = age, tf = log(t).
# Per case: coef, se = sqrt(diag(var)), var (column-major), inf (column-major),
# loglik, loglik_null, n, converged (crr's criterion at gtol = 1e-12, after the polish),
# converged_linesearch (crr's own flag), gradient, uftime, tfs (column-major).
# R's coefficient names are listed in the Python test (tests/test_finegray_tv.py).
# Usage: cd tests/reference && Rscript finegray_tv.R .
source("_common.R")
suppressPackageStartupMessages({ library(survival); library(cmprsk) })

fit_tv <- function(case, time, status, cov1, cov2, tf, failcode, cengroup = NULL) {
  cov2 <- as.matrix(cov2)
  run <- function(centre, ...) {
    c2 <- if (centre) scale(cov2, scale = FALSE) else cov2
    args <- list(time, status, cov2 = c2, tf = tf, failcode = failcode, cencode = 0,
                 gtol = 1e-12, ...)
    if (!is.null(cov1)) {
      cov1 <- as.matrix(cov1)
      args$cov1 <- if (centre) scale(cov1, scale = FALSE) else cov1
    }
    if (!is.null(cengroup)) args$cengroup <- cengroup
    do.call(crr, args)
  }
  raw <- run(FALSE, maxiter = 200)
  cen <- run(TRUE, maxiter = 200)
  grad <- function(f) max(abs(f$score) * pmax(abs(f$coef), 1))
  centre <- grad(cen) < grad(raw)
  f <- if (centre) cen else raw
  emit(case, "converged_linesearch", as.numeric(f$converged))
  # crr's line search gives up once the pseudo-likelihood no longer changes in double
  # precision (pbc_death_two_cengroup stops at |U| ~ 5e-7): polish with plain Newton
  # steps b + inf^-1 U, crr's own score and information at b (crr(init = b, maxiter = 0)
  # evaluates them, and the variance, at b without stepping)
  for (it in 1:3) {
    b <- f$coef + solve(f$inf, f$score)
    g <- run(centre, init = b, maxiter = 0)
    if (grad(g) >= grad(f)) break
    f <- g
  }
  f$converged <- grad(f) < max(abs(f$loglik), 1) * 1e-12
  emit(case, "centred", as.numeric(grad(cen) < grad(raw)))
  emit(case, "gradient", grad(f))
  emit(case, "coef", f$coef)
  emit(case, "se", sqrt(diag(f$var)))
  emit(case, "var", f$var)
  emit(case, "inf", f$inf)
  emit(case, "loglik", f$loglik)
  emit(case, "loglik_null", f$loglik.null)
  emit(case, "n", f$n)
  emit(case, "converged", as.numeric(f$converged))
  emit(case, "uftime", f$uftime)
  emit(case, "tfs", f$tfs)
  invisible(f)
}

mgus <- read_dataset("mgus2")
mg <- mgus[complete.cases(mgus[, c("time", "cause", "age", "male", "mspike")]), ]
fit_tv("mgus2_death_logt", mg$time, mg$cause, cbind(age = mg$age), cbind(male = mg$male),
       function(uft) cbind(log(uft)), failcode = 2)

pbc <- read_dataset("pbc")
log_bili <- log(pbc$bili)
fit_tv("pbc_death_step", pbc$time, pbc$status, cbind(log_bili = log_bili), cbind(age = pbc$age),
       function(uft) cbind(uft > median(uft)), failcode = 2)
fit_tv("pbc_death_two_cengroup", pbc$time, pbc$status,
       cbind(age = pbc$age, log_bili = log_bili), cbind(log_bili = log_bili, albumin = pbc$albumin),
       function(uft) cbind(log(uft), uft > 1500), failcode = 2, cengroup = pbc$female)
fit_tv("pbc_transplant_cov2only", pbc$time, pbc$status, NULL, cbind(age = pbc$age),
       function(uft) cbind(log(uft)), failcode = 1)

write_fixture("finegray_tv", pkgs = c("survival", "cmprsk"))
