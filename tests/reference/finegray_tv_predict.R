# Reference values for failpattern.stats.fine_gray_cif on Fine-Gray models with
# time-varying effects: cmprsk::predict.crr(fit, cov1, cov2). For a profile
# (z1, z2) the linear predictor at failure time t is z1'b1 + z2'(b2 * tf(t)) and
#   CIF(t) = 1 - exp(-cumsum(exp(lp(t)) * bfitj)),
# at the sorted distinct failure times of the cause of interest (fit$uftime), with
# bfitj crr's baseline subdistribution hazard jumps, computed by crr with the
# time-varying scores. The models are those of finegray_tv.R, fitted on the
# covariates as given (not centred: bfitj is the baseline at covariates 0) with
# gtol = 1e-12, maxiter = 200, then polished with up to 3 Newton steps of crr's own
# score and information (crr(init = b, maxiter = 0) evaluates them, and bfitj, at b)
# while they reduce the gradient max |U_j| max(|b_j|, 1): crr's line search stalls
# at |U| ~ 5e-7 on pbc_death_two_cengroup.
#
# Cases (the Python tests build the same data from datasets/*.csv):
#   mgus2_death_logt     complete cases of mgus2 (time, cause, age, male, mspike), death
#                        (cause 2): cov1 = age, cov2 = male, tf = log(t); 3 profiles.
#   pbc_death_step       pbc, death (status 2): cov1 = log(bili), cov2 = age,
#                        tf = (t > median of the failure times); 2 profiles.
#   pbc_death_two_cengroup  pbc, death: cov1 = (age, log(bili)), cov2 = (log(bili), albumin),
#                        tf = (log(t), t > 1500), cengroup = female; 3 profiles (each
#                        profile's log(bili) in both cov1 and cov2).
#   pbc_transplant_cov2only pbc, transplant (status 1): no cov1, cov2 = age, tf = log(t);
#                        2 profiles (predict.crr without cov1 takes one profile a call).
# Per case: gradient, converged (gradient < 1e-12 max(|loglik|, 1)), coef, loglik, uftime,
# tfs (column-major), bfitj, cif (column-major, time x profile), and the profiles
# (profile_<column>).
# Usage: cd tests/reference && Rscript finegray_tv_predict.R .
source("_common.R")
suppressPackageStartupMessages({ library(survival); library(cmprsk) })

emit_tv_pred <- function(case, time, status, cov1, cov2, tf, failcode, profiles,
                         cengroup = NULL) {
  cov2 <- as.matrix(cov2)
  run <- function(...) {
    args <- list(time, status, cov2 = cov2, tf = tf, failcode = failcode, cencode = 0,
                 gtol = 1e-12, ...)
    if (!is.null(cov1)) args$cov1 <- as.matrix(cov1)
    if (!is.null(cengroup)) args$cengroup <- cengroup
    do.call(crr, args)
  }
  grad <- function(f) max(abs(f$score) * pmax(abs(f$coef), 1))
  f <- run(maxiter = 200)
  for (it in 1:3) {
    g <- run(init = f$coef + solve(f$inf, f$score), maxiter = 0)
    if (grad(g) >= grad(f)) break
    f <- g
  }
  emit(case, "gradient", grad(f))
  emit(case, "converged", as.numeric(grad(f) < max(abs(f$loglik), 1) * 1e-12))
  emit(case, "coef", f$coef)
  emit(case, "loglik", f$loglik)
  emit(case, "uftime", f$uftime)
  emit(case, "tfs", f$tfs)
  emit(case, "bfitj", f$bfitj)
  p2 <- as.matrix(profiles[, colnames(cov2), drop = FALSE])
  if (is.null(cov1)) {
    # predict.crr's several-profile branch without cov1 sizes its result by nrow(cov1)
    pr <- sapply(seq_len(nrow(p2)), function(j) predict(f, cov2 = p2[j, ])[, 2])
  } else {
    p1 <- as.matrix(profiles[, colnames(cov1), drop = FALSE])
    pr <- predict(f, cov1 = p1, cov2 = p2)[, -1, drop = FALSE]
  }
  emit(case, "cif", as.vector(pr))
  for (v in names(profiles)) emit(case, paste0("profile_", v), profiles[[v]])
}

mgus <- read_dataset("mgus2")
mg <- mgus[complete.cases(mgus[, c("time", "cause", "age", "male", "mspike")]), ]
emit_tv_pred("mgus2_death_logt", mg$time, mg$cause, cbind(age = mg$age), cbind(male = mg$male),
             function(uft) cbind(log(uft)), failcode = 2,
             data.frame(age = c(60, 75, 80), male = c(0, 1, 1)))

pbc <- read_dataset("pbc")
log_bili <- log(pbc$bili)
emit_tv_pred("pbc_death_step", pbc$time, pbc$status, cbind(log_bili = log_bili),
             cbind(age = pbc$age), function(uft) cbind(uft > median(uft)), failcode = 2,
             data.frame(log_bili = c(0, 1.5), age = c(45, 60)))
emit_tv_pred("pbc_death_two_cengroup", pbc$time, pbc$status,
             cbind(age = pbc$age, log_bili = log_bili),
             cbind(log_bili = log_bili, albumin = pbc$albumin),
             function(uft) cbind(log(uft), uft > 1500), failcode = 2,
             data.frame(age = c(45, 60, 70), log_bili = c(0, 1.5, -0.5),
                        albumin = c(3.5, 3, 4)),
             cengroup = pbc$female)
emit_tv_pred("pbc_transplant_cov2only", pbc$time, pbc$status, NULL, cbind(age = pbc$age),
             function(uft) cbind(log(uft)), failcode = 1, data.frame(age = c(35, 50)))

write_fixture("finegray_tv_predict", pkgs = c("survival", "cmprsk"))
