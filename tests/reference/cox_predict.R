# Reference values for failpattern.stats.cox_survival: predicted survival curves
# of Cox models, survival::survfit(coxph_fit, newdata = profiles), with R's
# defaults: stype = 2 (S = exp(-H)), ctype from the fit's ties (Breslow/Aalen
# increments for ties = "breslow", Efron's for "efron"), se.fit = TRUE (the
# variance includes the term from the coefficients' covariance), conf.type =
# "log" at 95% unless a case says otherwise; censor = TRUE (every distinct time).
# The models are fitted as in cox.R (eps = 1e-12) so the coefficients are exact
# to ~1e-12 and the curves can be held to 1e-9.
#
# Per case (column-major matrices time x profile, one block per stratum):
# time, n_risk, n_event, n_censor, strata (rows per curve, when stratified),
# surv, cumhaz, std_err (R's std.err: the SE of the cumulative hazard, i.e. of
# log S), lower, upper; and the profiles themselves (profile_<covariate>).
# Cases:
#   lung_efron, lung_breslow        age + sex + ph_ecog, complete cases, 3 profiles
#   lung_mean_efron                 no newdata: the curve at the covariate means
#   lung_loglog, lung_plain         conf.type "log-log" / "plain", 90% limits
#   lung_efron_ctype1               the Efron fit with Breslow increments (ctype = 1)
#   veteran_efron, veteran_breslow  trt + karno + age + prior + celltype indicators
#   lung_strata_inst                strata(inst); newdata with inst: one curve per profile
#   lung_strata_all                 the same fit; newdata without inst: every stratum per profile
#   bladder2_efron, bladder2_breslow  Surv(start, stop, event) ~ rx + number + size
#   bladder2_weights_efron          ... with weights w = 0.5 + (id %% 4) / 4, robust = FALSE
# Usage: cd tests/reference && Rscript cox_predict.R .
source("_common.R")
suppressPackageStartupMessages(library(survival))

ctrl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = .Machine$double.eps^0.85)

emit_curves <- function(case, sf, profiles = NULL) {
  emit(case, "time", sf$time)
  emit(case, "n_risk", sf$n.risk)
  emit(case, "n_event", sf$n.event)
  emit(case, "n_censor", sf$n.censor)
  if (!is.null(sf$strata)) emit(case, "strata", as.vector(sf$strata))
  emit(case, "surv", as.vector(sf$surv))
  emit(case, "cumhaz", as.vector(sf$cumhaz))
  emit(case, "std_err", as.vector(sf$std.err))
  emit(case, "lower", as.vector(sf$lower))
  emit(case, "upper", as.vector(sf$upper))
  if (!is.null(profiles)) for (v in names(profiles)) emit(case, paste0("profile_", v), profiles[[v]])
}

lung <- read_dataset("lung")
lung <- lung[complete.cases(lung[, c("time", "event", "age", "sex", "ph_ecog")]), ]
lung_new <- data.frame(age = c(50, 70, 62.5), sex = c(1, 2, 1), ph_ecog = c(0, 1, 2))
for (ties in c("efron", "breslow")) {
  fit <- coxph(Surv(time, event) ~ age + sex + ph_ecog, data = lung, ties = ties, control = ctrl)
  emit_curves(paste0("lung_", ties), survfit(fit, newdata = lung_new), lung_new)
  emit(paste0("lung_", ties), "coef", coef(fit))
}
fit <- coxph(Surv(time, event) ~ age + sex + ph_ecog, data = lung, control = ctrl)
emit_curves("lung_mean_efron", survfit(fit))
emit("lung_mean_efron", "means", fit$means)
emit_curves("lung_loglog", survfit(fit, newdata = lung_new, conf.type = "log-log", conf.int = 0.9),
            lung_new)
emit_curves("lung_plain", survfit(fit, newdata = lung_new, conf.type = "plain", conf.int = 0.9),
            lung_new)
emit_curves("lung_efron_ctype1", survfit(fit, newdata = lung_new, ctype = 1), lung_new)

vet <- read_dataset("veteran")
vet$smallcell <- as.integer(vet$celltype == "smallcell")
vet$adeno <- as.integer(vet$celltype == "adeno")
vet$large <- as.integer(vet$celltype == "large")
vet_new <- data.frame(trt = c(1, 2), karno = c(60, 80), age = c(65, 50), prior = c(0, 1),
                      smallcell = c(1, 0), adeno = c(0, 0), large = c(0, 1))
for (ties in c("efron", "breslow")) {
  fit <- coxph(Surv(time, event) ~ trt + karno + age + prior + smallcell + adeno + large,
               data = vet, ties = ties, control = ctrl)
  emit_curves(paste0("veteran_", ties), survfit(fit, newdata = vet_new), vet_new)
}

lung_inst <- lung[!is.na(lung$inst), ]
fit <- coxph(Surv(time, event) ~ age + sex + ph_ecog + strata(inst), data = lung_inst,
             control = ctrl)
inst_new <- data.frame(age = c(60, 70), sex = c(2, 1), ph_ecog = c(1, 0), inst = c(1, 12))
emit_curves("lung_strata_inst", survfit(fit, newdata = inst_new), inst_new)
emit_curves("lung_strata_all", survfit(fit, newdata = inst_new[, c("age", "sex", "ph_ecog")]),
            inst_new[, c("age", "sex", "ph_ecog")])

bl <- read_dataset("bladder2")
bl$w <- 0.5 + (bl$id %% 4) / 4
bl_new <- data.frame(rx = c(1, 2), number = c(1, 3), size = c(1, 4))
for (ties in c("efron", "breslow")) {
  fit <- coxph(Surv(start, stop, event) ~ rx + number + size, data = bl, ties = ties,
               control = ctrl)
  emit_curves(paste0("bladder2_", ties), survfit(fit, newdata = bl_new), bl_new)
}
fit <- coxph(Surv(start, stop, event) ~ rx + number + size, data = bl, weights = w,
             robust = FALSE, control = ctrl)
emit_curves("bladder2_weights_efron", survfit(fit, newdata = bl_new), bl_new)

write_fixture("cox_predict", pkgs = c("survival"))
