# Log-rank reference for src/failpattern/stats/logrank.py (tests/test_logrank.py).
# survdiff (rho = 0, and the G-rho cases below): chisq, df, p = pchisq(chisq, df, lower.tail = FALSE), and the
# per-group observed and expected counts (summed over strata), groups in sorted
# label order. Rows with a missing group (lung ph_ecog: one NA) are dropped before
# the fit, here and in the test, so both see the same 227 rows.
# Usage: cd tests/reference && Rscript logrank.R .
source("_common.R")
suppressPackageStartupMessages(library(survival))

lung <- read_dataset("lung")
veteran <- read_dataset("veteran")

emit_test <- function(case, fit) {
  obs <- if (is.matrix(fit$obs)) rowSums(fit$obs) else fit$obs
  exp <- if (is.matrix(fit$exp)) rowSums(fit$exp) else fit$exp
  df <- sum(exp > 0) - 1
  emit(case, "chisq", fit$chisq)
  emit(case, "df", df)
  emit(case, "p", pchisq(fit$chisq, df, lower.tail = FALSE))
  emit(case, "n", as.vector(fit$n))
  emit(case, "obs", obs)
  emit(case, "exp", exp)
}

emit_test("lung_sex", survdiff(Surv(time, event) ~ sex, data = lung))
ecog <- lung[!is.na(lung$ph_ecog), ]
emit_test("lung_ecog", survdiff(Surv(time, event) ~ ph_ecog, data = ecog))
emit_test("veteran_celltype", survdiff(Surv(time, event) ~ celltype, data = veteran))
emit_test("veteran_trt_by_celltype",
          survdiff(Surv(time, event) ~ trt + strata(celltype), data = veteran))

# The small constructed datasets are written to the fixture too (input_*; text labels
# as their 1-based rank), so the test reads exactly the rows R used.
# Group 3's only subject is censored before the first event: E = 0, so R leaves it
# out of the quadratic form and of df (df = 1, not 2).
zero_exp <- data.frame(time = c(1, 2, 3, 4, 5, 6, 0.5), event = c(1, 0, 1, 1, 0, 1, 0),
                       group = c(1, 1, 1, 2, 2, 2, 3))
emit_input <- function(case, data) {
  for (v in c("time", "event")) emit(case, paste0("input_", v), data[[v]])
  emit(case, "input_group", match(data$group, sort(unique(data$group))))
  if (!is.null(data$stratum))
    emit(case, "input_stratum", match(data$stratum, sort(unique(data$stratum))))
}
emit_input("zero_expected", zero_exp)
emit_test("zero_expected", survdiff(Surv(time, event) ~ group, data = zero_exp))
# Three groups, two strata; group "c" occurs in stratum B only; tied times.
sparse <- data.frame(time = c(2, 3, 3, 5, 8, 1, 3, 4, 4, 6, 7, 2, 5, 5, 9),
                     event = c(1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1),
                     group = c("a", "a", "b", "b", "a", "a", "b", "c", "c", "a", "b", "c", "b",
                               "a", "c"),
                     stratum = rep(c("A", "B"), c(5, 10)))
emit_input("sparse_strata", sparse)
emit_test("sparse_strata", survdiff(Surv(time, event) ~ group + strata(stratum), data = sparse))

# Fleming-Harrington G-rho weights, w(t) = S(t-)^rho with S the pooled (per stratum)
# left-continuous Kaplan-Meier: the same fits with rho = 0.5 and 1 (case name suffix
# _rho0.5 / _rho1). obs and exp are then the weighted sums survdiff reports. survdiff
# has no gamma; the test checks gamma against a hand-computed example instead.
for (rho in c(0.5, 1)) {
  sfx <- paste0("_rho", rho)
  emit_test(paste0("lung_sex", sfx), survdiff(Surv(time, event) ~ sex, data = lung, rho = rho))
  emit_test(paste0("lung_ecog", sfx), survdiff(Surv(time, event) ~ ph_ecog, data = ecog, rho = rho))
  emit_test(paste0("veteran_celltype", sfx),
            survdiff(Surv(time, event) ~ celltype, data = veteran, rho = rho))
  emit_test(paste0("veteran_trt_by_celltype", sfx),
            survdiff(Surv(time, event) ~ trt + strata(celltype), data = veteran, rho = rho))
  emit_test(paste0("zero_expected", sfx),
            survdiff(Surv(time, event) ~ group, data = zero_exp, rho = rho))
  emit_test(paste0("sparse_strata", sfx),
            survdiff(Surv(time, event) ~ group + strata(stratum), data = sparse, rho = rho))
}

write_fixture("logrank", pkgs = c("survival"))
