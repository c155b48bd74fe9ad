# Reference values for failpattern.stats.cox: Cox proportional hazards fits by
# survival::coxph, converged far beyond R's default (eps = 1e-12 on the
# relative change in the log partial likelihood, up to 100 iterations), so the
# fixture is itself accurate to ~1e-12 and Python can be held to 1e-10.
# toler.chol is lowered below eps (coxph.control asks for toler.chol < eps);
# none of these models is near singular, so it changes no estimate.
#
# Cases (the Python tests build the same data from datasets/*.csv):
#   lung_*      complete cases of lung on (time, event, age, sex, ph_ecog):
#               one row with ph_ecog missing is dropped.
#   lung_strata_inst  additionally drops the row with inst missing (inst is
#               NA for one patient), then fits strata(inst).
#   veteran_*   celltype as 0/1 indicators smallcell, adeno, large with
#               squamous as the reference level.
#   pbc_efron   event = (status == 2) (death; transplant counted as censored),
#               log_bili = log(bili).
#   separation  a tiny hand-made data set (emitted as data) on which every
#               event has x = 1: R warns that the coefficient may be infinite.
# Every case emits: coef, se, z, p, hr, hr_lower, hr_upper (95%), loglik
# (null, final), lr / score / wald (statistic, df, p), n, nevent, iter and the
# covariance matrix (column-major).
# Usage: cd tests/reference && Rscript cox.R .
source("_common.R")
suppressPackageStartupMessages(library(survival))

ctrl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = .Machine$double.eps^0.85)

emit_fit <- emit_coxph

lung <- read_dataset("lung")
lung <- lung[complete.cases(lung[, c("time", "event", "age", "sex", "ph_ecog")]), ]
for (ties in c("efron", "breslow")) {
  emit_fit(paste0("lung_", ties),
           coxph(Surv(time, event) ~ age + sex + ph_ecog, data = lung, ties = ties, control = ctrl))
}
emit_fit("lung_sex_efron", coxph(Surv(time, event) ~ sex, data = lung, control = ctrl))
emit_fit("lung_sex_breslow",
         coxph(Surv(time, event) ~ sex, data = lung, ties = "breslow", control = ctrl))
lung_inst <- lung[!is.na(lung$inst), ]
emit_fit("lung_strata_inst",
         coxph(Surv(time, event) ~ age + sex + ph_ecog + strata(inst), data = lung_inst,
               control = ctrl))

vet <- read_dataset("veteran")
vet$smallcell <- as.integer(vet$celltype == "smallcell")
vet$adeno <- as.integer(vet$celltype == "adeno")
vet$large <- as.integer(vet$celltype == "large")
for (ties in c("efron", "breslow")) {
  emit_fit(paste0("veteran_", ties),
           coxph(Surv(time, event) ~ trt + karno + age + prior + smallcell + adeno + large,
                 data = vet, ties = ties, control = ctrl))
  emit_fit(paste0("veteran_strata_celltype_", ties),
           coxph(Surv(time, event) ~ trt + karno + age + prior + strata(celltype),
                 data = vet, ties = ties, control = ctrl))
}
emit_fit("veteran_strata_two",
         coxph(Surv(time, event) ~ trt + karno + age + strata(celltype, prior),
               data = vet, control = ctrl))

pbc <- read_dataset("pbc")
pbc$death <- as.integer(pbc$status == 2)
pbc$log_bili <- log(pbc$bili)
emit_fit("pbc_efron",
         coxph(Surv(time, death) ~ age + log_bili + albumin + edema, data = pbc, control = ctrl))

# Counting-process (start, stop] data, case weights and the robust (sandwich)
# variance with clusters: bladder2 (one row per at-risk interval of each patient).
#   bladder2_*        Surv(start, stop, event) ~ rx + number + size
#   *_weights*        weights w = 0.5 + (id %% 4) / 4 (exact binary fractions);
#                     robust = FALSE is explicit, as R's default turns the robust
#                     variance on for non-integer weights (failpattern never does)
#   *_cluster*        cluster = id: se is the robust (grouped dfbeta) one, naive_se
#                     and naive_covariance the model-based ones, covariance robust
#   bladder2_weights_robust  robust variance with one cluster per row
#   lung_robust       robust = TRUE on ordinary right-censored data (one cluster per row)
bl <- read_dataset("bladder2")
bl$w <- 0.5 + (bl$id %% 4) / 4
for (ties in c("efron", "breslow")) {
  emit_fit(paste0("bladder2_", ties),
           coxph(Surv(start, stop, event) ~ rx + number + size, data = bl, ties = ties,
                 control = ctrl))
  emit_fit(paste0("bladder2_weights_", ties),
           coxph(Surv(start, stop, event) ~ rx + number + size, data = bl, ties = ties,
                 weights = w, robust = FALSE, control = ctrl))
  emit_fit(paste0("bladder2_cluster_", ties),
           coxph(Surv(start, stop, event) ~ rx + number + size, data = bl, ties = ties,
                 cluster = id, control = ctrl))
  emit_fit(paste0("bladder2_weights_cluster_", ties),
           coxph(Surv(start, stop, event) ~ rx + number + size, data = bl, ties = ties,
                 weights = w, cluster = id, control = ctrl))
}
bl$row <- seq_len(nrow(bl))
emit_fit("bladder2_weights_robust",
         coxph(Surv(start, stop, event) ~ rx + number + size, data = bl, weights = w,
               cluster = row, control = ctrl))
emit_fit("bladder2_strata_cluster",
         coxph(Surv(start, stop, event) ~ rx + number + size + strata(enum), data = bl,
               cluster = id, control = ctrl))
# Wei-Lin-Weissfeld marginal model: every recurrence from time 0, one stratum per recurrence
# number, the robust variance clustered by patient (survival's bladder example)
bw <- read_dataset("bladder")
emit_fit("bladder_wlw",
         coxph(Surv(stop, event) ~ rx + number + size + strata(enum), data = bw, cluster = id,
               control = ctrl))
emit_fit("lung_robust",
         coxph(Surv(time, event) ~ age + sex + ph_ecog, data = lung, robust = TRUE,
               control = ctrl))

# Monotone likelihood: every event has x = 1, so beta -> +infinity.
sep <- data.frame(time = c(2, 3, 3, 5, 7, 8, 9, 11, 12, 15),
                  event = c(1, 1, 0, 1, 0, 1, 0, 0, 1, 0),
                  x = c(1, 1, 0, 1, 0, 1, 1, 0, 1, 0),
                  z = c(0.5, 1.2, -0.3, 0.8, 2.1, -1.0, 0.0, 1.5, 0.3, -0.7))
emit("separation", "time", sep$time)
emit("separation", "event", sep$event)
emit("separation", "x", sep$x)
emit("separation", "z", sep$z)
# R flags x: alone, "Loglik converged before variable 1; coefficient may be
# infinite"; with z, "Ran out of iterations and did not converge".
warning_flags <- function(formula) {
  seen <- character(0)
  withCallingHandlers(
    invisible(coxph(formula, data = sep)),
    warning = function(w) {
      seen <<- c(seen, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  c(infinite = any(grepl("coefficient may be infinite", seen)),
    not_converged = any(grepl("did not converge", seen)))
}
for (model in list(list("x", Surv(time, event) ~ x), list("x_z", Surv(time, event) ~ x + z))) {
  flags <- warning_flags(model[[2]])
  emit("separation", paste0("warned_infinite_", model[[1]]), as.numeric(flags[["infinite"]]))
  emit("separation", paste0("warned_not_converged_", model[[1]]),
       as.numeric(flags[["not_converged"]]))
}

write_fixture("cox", pkgs = c("survival"))
