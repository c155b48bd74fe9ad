# Reference values for failpattern.stats.zph: survival::cox.zph (survival 3.x,
# terms = TRUE) on Cox fits converged far beyond R's default (as in cox.R), so
# the fixture is accurate well beyond the 1e-6 the tests ask for.
#
# Cases (the Python tests build the same data from datasets/*.csv):
#   lung_efron_<transform>, lung_breslow_<transform>
#               complete cases of lung on (time, event, age, sex, ph_ecog).
#   veteran_efron_<transform>  veteran on (trt, karno, age).
#   lung_strata_efron_<transform>     lung on (age, ph_ecog), strata(sex).
#   veteran_strata_breslow_<transform> veteran on (trt, karno, age), strata(celltype).
#   <transform> is km, rank or identity (lung_efron also log).
#   lung_years_<ties>_<transform>[_nofix]  lung with follow-up in years from "dates"
#               (as timefix.R: yrs = (d0 + time) / 365.25 - d0 / 365.25, d0 = 13 * row),
#               so equal day counts are near-tied: coxph's default timefix = TRUE merges
#               them (cox.zph then sees the merged times); _nofix: timefix = FALSE.
#               efron: km, identity (with and without timefix); breslow: rank (timefix).
# Every case emits, per term and then GLOBAL: chisq, df, p; and the scaled
# Schoenfeld residuals: time, x (transformed time) and y_<term>.
# Usage: cd tests/reference && Rscript zph.R .
source("_common.R")
suppressPackageStartupMessages(library(survival))

ctrl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = .Machine$double.eps^0.85)

emit_zph <- function(case, fit, transform) {
  z <- cox.zph(fit, transform = transform, terms = TRUE)
  emit(case, "chisq", z$table[, "chisq"])
  emit(case, "df", z$table[, "df"])
  emit(case, "p", z$table[, "p"])
  emit(case, "time", z$time)
  emit(case, "x", z$x)
  for (term in colnames(z$y)) emit(case, paste0("y_", term), z$y[, term])
}

lung <- read_dataset("lung")
lung <- lung[complete.cases(lung[, c("time", "event", "age", "sex", "ph_ecog")]), ]
veteran <- read_dataset("veteran")

for (ties in c("efron", "breslow")) {
  fit <- coxph(Surv(time, event) ~ age + sex + ph_ecog, data = lung, ties = ties, control = ctrl)
  transforms <- if (ties == "efron") c("km", "rank", "identity", "log") else c("km", "rank", "identity")
  for (tr in transforms) emit_zph(paste0("lung_", ties, "_", tr), fit, tr)
}
fit <- coxph(Surv(time, event) ~ trt + karno + age, data = veteran, ties = "efron", control = ctrl)
for (tr in c("km", "rank", "identity")) emit_zph(paste0("veteran_efron_", tr), fit, tr)

# stratified models (the "km" transform uses the Kaplan-Meier of all the data, as
# failpattern does; the test shows R agrees)
fit <- coxph(Surv(time, event) ~ age + ph_ecog + strata(sex), data = lung, ties = "efron", control = ctrl)
for (tr in c("km", "rank", "identity")) emit_zph(paste0("lung_strata_efron_", tr), fit, tr)
fit <- coxph(Surv(time, event) ~ trt + karno + age + strata(celltype), data = veteran, ties = "breslow",
             control = ctrl)
for (tr in c("km", "identity")) emit_zph(paste0("veteran_strata_breslow_", tr), fit, tr)

# near-tied times (follow-up in years from dates), timefix on (coxph's default) and off
d0 <- 13 * seq_len(nrow(lung))
lung$yrs <- (d0 + lung$time) / 365.25 - d0 / 365.25
for (fix in c(TRUE, FALSE)) {
  cfix <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = .Machine$double.eps^0.85,
                        timefix = fix)
  for (ties in c("efron", "breslow")) {
    fit <- coxph(Surv(yrs, event) ~ age + sex + ph_ecog, data = lung, ties = ties, control = cfix)
    transforms <- if (ties == "efron") c("km", "identity") else if (fix) "rank" else character(0)
    for (tr in transforms)
      emit_zph(paste0("lung_years_", ties, "_", tr, if (fix) "" else "_nofix"), fit, tr)
  }
}

write_fixture("zph", pkgs = c("survival"))
