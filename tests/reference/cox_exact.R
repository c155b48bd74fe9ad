# Reference values for failpattern.stats.cox with ties = "exact": survival::coxph's
# exact partial likelihood (the discrete / conditional logistic model; coxexact for
# (time, status) data, agexact for (start, stop] rows), converged as in cox.R
# (eps = 1e-12, up to 100 iterations). Heavy ties make exact differ from Efron.
#
# Cases (the Python tests build the same data from datasets/*.csv):
#   lung_months_exact   complete cases of lung (as cox.R), time in months,
#                       month = round(time / 30.4375): up to 15 events at one time.
#   lung_months_strata_sex_exact  age + ph_ecog + strata(sex) on the same data.
#   veteran_exact       as cox.R's veteran_* (celltype indicators, squamous reference).
#   veteran_strata_celltype_exact  trt + karno + age + prior + strata(celltype).
#   veteran_split_exact counting-process rows: each patient's follow-up split at day
#                       90 (survSplit; (tstart, time]), covariates trt, karno and the
#                       time-varying karno_late = karno * (tstart >= 90). R's agexact
#                       enumerates subsets, so only modest ties are practical here.
#   veteran_split_strata_exact  the same + strata(prior).
# Every case emits what cox.R's cases emit.
# Usage: cd tests/reference && Rscript cox_exact.R .
source("_common.R")
suppressPackageStartupMessages(library(survival))

ctrl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = .Machine$double.eps^0.85)

emit_fit <- emit_coxph

lung <- read_dataset("lung")
lung <- lung[complete.cases(lung[, c("time", "event", "age", "sex", "ph_ecog")]), ]
lung$month <- round(lung$time / 30.4375)
emit_fit("lung_months_exact",
         coxph(Surv(month, event) ~ age + sex + ph_ecog, data = lung, ties = "exact",
               control = ctrl))
emit_fit("lung_months_strata_sex_exact",
         coxph(Surv(month, event) ~ age + ph_ecog + strata(sex), data = lung, ties = "exact",
               control = ctrl))

vet <- read_dataset("veteran")
vet$smallcell <- as.integer(vet$celltype == "smallcell")
vet$adeno <- as.integer(vet$celltype == "adeno")
vet$large <- as.integer(vet$celltype == "large")
emit_fit("veteran_exact",
         coxph(Surv(time, event) ~ trt + karno + age + prior + smallcell + adeno + large,
               data = vet, ties = "exact", control = ctrl))
emit_fit("veteran_strata_celltype_exact",
         coxph(Surv(time, event) ~ trt + karno + age + prior + strata(celltype),
               data = vet, ties = "exact", control = ctrl))

split <- survSplit(Surv(time, event) ~ ., data = vet, cut = 90, start = "tstart")
split$karno_late <- split$karno * (split$tstart >= 90)
emit_fit("veteran_split_exact",
         coxph(Surv(tstart, time, event) ~ trt + karno + karno_late, data = split,
               ties = "exact", control = ctrl))
emit_fit("veteran_split_strata_exact",
         coxph(Surv(tstart, time, event) ~ trt + karno + karno_late + strata(prior),
               data = split, ties = "exact", control = ctrl))

write_fixture("cox_exact", pkgs = c("survival"))
