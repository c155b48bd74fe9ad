# Reference values for failpattern.stats.fine_gray_cif: predicted cumulative
# incidence of a Fine-Gray model, cmprsk::predict.crr(fit, cov1 = profiles):
# CIF(t | z) = 1 - exp(-sum_{u <= t} exp(z'b) bfitj(u)), at the distinct failure
# times of the cause of interest (fit$uftime), with bfitj crr's baseline
# subdistribution hazard jumps (at covariates = 0). crr is fitted tightly
# (gtol = 1e-12, maxiter = 200) so the coefficients, hence the curves, are
# exact to ~1e-12.
# Per case: coef, uftime, bfitj, cif (column-major, time x profile), and the
# profiles (profile_<covariate>); gradient = crr's convergence statistic.
# Cases:
#   mgus2_progression  cause 1 (progression) vs death, age + male, 3 profiles
#   mgus2_death        cause 2 (death without progression), same covariates
#   pbc_death          status 2 (death) vs transplant, age + log_bili, 2 profiles
# Usage: cd tests/reference && Rscript finegray_predict.R .
source("_common.R")
suppressPackageStartupMessages({ library(survival); library(cmprsk) })

emit_pred <- function(case, time, status, cov, failcode, profiles) {
  cov <- as.matrix(cov)
  f <- crr(time, status, cov1 = cov, failcode = failcode, cencode = 0, gtol = 1e-12,
           maxiter = 200)
  emit(case, "gradient", max(abs(f$score) * pmax(abs(f$coef), 1)))
  emit(case, "converged", as.numeric(f$converged))
  emit(case, "coef", f$coef)
  emit(case, "loglik", f$loglik)
  emit(case, "uftime", f$uftime)
  emit(case, "bfitj", f$bfitj)
  pr <- predict(f, cov1 = as.matrix(profiles))
  emit(case, "cif", as.vector(pr[, -1]))
  for (v in names(profiles)) emit(case, paste0("profile_", v), profiles[[v]])
}

mgus <- read_dataset("mgus2")
mg <- mgus[complete.cases(mgus[, c("time", "cause", "age", "male")]), ]
emit("mgus2_progression", "n", nrow(mg))
mg_new <- data.frame(age = c(60, 75, 80), male = c(0, 1, 1))
emit_pred("mgus2_progression", mg$time, mg$cause, mg[, c("age", "male")], 1, mg_new)
emit_pred("mgus2_death", mg$time, mg$cause, mg[, c("age", "male")], 2, mg_new)

pbc <- read_dataset("pbc")
pbc_cov <- data.frame(age = pbc$age, log_bili = log(pbc$bili))
pbc_new <- data.frame(age = c(45, 60), log_bili = c(0, 1.5))
emit_pred("pbc_death", pbc$time, pbc$status, pbc_cov, 2, pbc_new)

# crr's censoring groups (cengroup): the censoring distribution G is a separate
# Kaplan-Meier per group, and a competing row's weight uses its own group's G.
# Per case: coef, var (column-major), loglik, loglik_null, gradient, converged.
#   pbc_cengroup_female   death vs transplant, age + log_bili, cengroup = female
#   pbc_cengroup_edema    the same, cengroup = edema (3 groups, the smallest ending early)
#   pbc_coarse_cengroup   floor(time / 1000) (ties and time 0), cengroup = female
#   pbc_transplant_cengroup  transplant (failcode 1) vs death, cengroup = female
emit_groups <- function(case, time, status, cov, failcode, cengroup) {
  f <- crr(time, status, cov1 = as.matrix(cov), failcode = failcode, cencode = 0,
           cengroup = cengroup, gtol = 1e-12, maxiter = 200)
  emit(case, "gradient", max(abs(f$score) * pmax(abs(f$coef), 1)))
  emit(case, "converged", as.numeric(f$converged))
  emit(case, "coef", f$coef)
  emit(case, "var", as.vector(f$var))
  emit(case, "loglik", f$loglik)
  emit(case, "loglik_null", f$loglik.null)
  emit(case, "bfitj", f$bfitj)
}
emit_groups("pbc_cengroup_female", pbc$time, pbc$status, pbc_cov, 2, pbc$female)
emit_groups("pbc_cengroup_edema", pbc$time, pbc$status, pbc_cov, 2, pbc$edema)
emit_groups("pbc_coarse_cengroup", floor(pbc$time / 1000), pbc$status, pbc_cov, 2, pbc$female)
emit_groups("pbc_transplant_cengroup", pbc$time, pbc$status, pbc_cov, 1, pbc$female)

write_fixture("finegray_predict", pkgs = c("survival", "cmprsk"))
