# Reference values for failpattern.stats.timefix: R survival's timefix rule
# (aeqSurv: times that differ only by floating-point rounding are one time),
# the default of survfit, survdiff and coxph, against timefix = FALSE.
#
# Cases (the Python tests build the same data):
#   tiedtime    survival's tests/tiedtime.R ("rounding.R"): time = c(1, 2, sqrt(2)^2,
#               2, sqrt(2)^2), all events, group = c(1, 1, 1, 2, 2). sqrt(2)^2 is
#               2 + 4.4e-16, so without timefix there are three distinct times.
#               survdiff's own timefix = FALSE argument fails in survival 3.5-3
#               (it is passed on to model.frame), so the no-timefix test is
#               survival:::survdiff.fit on the unfixed Surv object (what
#               survdiff does after aeqSurv).
#   lung_years  complete cases of lung (time, event, age, sex, ph_ecog); follow-up in
#               years computed from "dates", yrs = (d0 + time) / 365.25 - d0 / 365.25
#               with d0 = 13 * row (days), so equal day counts differ in the last bits.
#               Cox (efron, breslow), log-rank by sex, KM (all): *_fix and *_nofix.
#   bladder2_years  bladder2 (start, stop] in years the same way (d0 = 17 * id), both
#               ends near-tied: Cox (efron) and the delayed-entry KM, *_fix / *_nofix.
# Usage: cd tests/reference && Rscript timefix.R .
source("_common.R")
suppressPackageStartupMessages(library(survival))

ctrl <- function(fix) coxph.control(eps = 1e-12, iter.max = 100, timefix = fix,
                                    toler.chol = .Machine$double.eps^0.85)

emit_survdiff <- function(case, y, group) {
  for (fix in c(TRUE, FALSE)) {
    yy <- if (fix) aeqSurv(y) else y
    f <- survival:::survdiff.fit(yy, factor(group), rep(1, length(group)))
    diff <- (f$observed - f$expected)[-1]
    chisq <- sum(solve(f$var[-1, -1, drop = FALSE], diff) * diff)
    tag <- if (fix) "_fix" else "_nofix"
    emit(case, paste0("logrank_chisq", tag), chisq)
    emit(case, paste0("logrank_observed", tag), f$observed)
    emit(case, paste0("logrank_expected", tag), f$expected)
  }
}

emit_km <- function(case, fit, tag) {
  emit(case, paste0("km_time", tag), fit$time)
  emit(case, paste0("km_n_risk", tag), fit$n.risk)
  emit(case, paste0("km_surv", tag), fit$surv)
  emit(case, paste0("km_std_err", tag), fit$std.err)
}

emit_cox <- function(case, fit, tag) {
  emit(case, paste0("cox_coef", tag), coef(fit))
  emit(case, paste0("cox_se", tag), sqrt(diag(fit$var)))
  emit(case, paste0("cox_loglik", tag), fit$loglik)
  emit(case, paste0("cox_score", tag), fit$score)
}

# tiedtime: survival/tests/tiedtime.R
tdata <- data.frame(time = c(1, 2, sqrt(2)^2, 2, sqrt(2)^2), status = rep(1, 5),
                    group = c(1, 1, 1, 2, 2))
y <- Surv(tdata$time, tdata$status)
emit("tiedtime", "time", tdata$time)
emit("tiedtime", "logrank_chisq_default", survdiff(Surv(time, status) ~ group, tdata)$chisq)
emit_survdiff("tiedtime", y, tdata$group)
emit_km("tiedtime", survfit(Surv(time, status) ~ 1, tdata), "_fix")
emit_km("tiedtime", survfit(Surv(time, status) ~ 1, tdata, timefix = FALSE), "_nofix")
for (fix in c(TRUE, FALSE)) {
  emit_cox("tiedtime", coxph(Surv(time, status) ~ group, tdata, control = ctrl(fix)),
           if (fix) "_fix" else "_nofix")
}

lung <- read_dataset("lung")
lung <- lung[complete.cases(lung[, c("time", "event", "age", "sex", "ph_ecog")]), ]
d0 <- 13 * seq_len(nrow(lung))
lung$yrs <- (d0 + lung$time) / 365.25 - d0 / 365.25
emit("lung_years", "yrs", lung$yrs)
emit("lung_years", "distinct_nofix", length(unique(lung$yrs)))
emit("lung_years", "distinct_fix", length(unique(aeqSurv(Surv(lung$yrs, lung$event))[, 1])))
for (fix in c(TRUE, FALSE)) {
  tag <- if (fix) "_fix" else "_nofix"
  for (ties in c("efron", "breslow")) {
    emit_cox("lung_years",
             coxph(Surv(yrs, event) ~ age + sex + ph_ecog, lung, ties = ties,
                   control = ctrl(fix)), paste0("_", ties, tag))
  }
  emit_km("lung_years", survfit(Surv(yrs, event) ~ 1, lung, timefix = fix), tag)
}
emit_survdiff("lung_years", Surv(lung$yrs, lung$event), lung$sex)

bl <- read_dataset("bladder2")
d0 <- 17 * bl$id
bl$start_y <- (d0 + bl$start * 30.4375) / 365.25 - d0 / 365.25
bl$stop_y <- (d0 + bl$stop * 30.4375) / 365.25 - d0 / 365.25
emit("bladder2_years", "start_y", bl$start_y)
emit("bladder2_years", "stop_y", bl$stop_y)
for (fix in c(TRUE, FALSE)) {
  tag <- if (fix) "_fix" else "_nofix"
  emit_cox("bladder2_years",
           coxph(Surv(start_y, stop_y, event) ~ rx + number + size, bl, control = ctrl(fix)),
           tag)
  emit_km("bladder2_years", survfit(Surv(start_y, stop_y, event) ~ 1, bl, timefix = fix), tag)
}

write_fixture("timefix", pkgs = c("survival"))
