# Kaplan-Meier reference for src/failpattern/stats/km.py (tests/test_km.py).
# For each case and conf.type: the survfit curve at every distinct observed time
# (time, n.risk, n.event, n.censor, surv, SE of S = std.err * surv, lower, upper)
# and the median with its limits from summary(fit)$table (print.survfit's rule).
# R's NA (SE and limits once S = 0; log-log limits where S = 1) is written as NA.
# Usage: cd tests/reference && Rscript km.R .
source("_common.R")
suppressPackageStartupMessages(library(survival))

lung <- read_dataset("lung")
veteran <- read_dataset("veteran")
# Tied data whose curve sits at exactly 0.5 (= 4/6 * 3/4) from t = 4 until the
# drop to 0 at t = 7, so R's median is the midpoint 5.5. It opens with a
# censored time (S = 1: log-log limits NA) and has an event/censoring tie at 4.
flat <- data.frame(time = c(1, 2, 2, 4, 4, 5, 7), event = c(0, 1, 1, 1, 0, 0, 1))
# Curve at exactly 0.5 to the end of follow-up: R's median is the left end, 2.
flat_end <- data.frame(time = c(1, 2, 3, 4), event = c(1, 1, 0, 0))
all_censored <- data.frame(time = c(3, 1, 2, 2), event = c(0, 0, 0, 0))

emit_fit <- function(case, fit) {
  emit(case, "time", fit$time)
  emit(case, "n_risk", fit$n.risk)
  emit(case, "n_event", fit$n.event)
  emit(case, "n_censor", fit$n.censor)
  emit(case, "surv", fit$surv)
  emit(case, "se", fit$std.err * fit$surv)
  emit(case, "lower", fit$lower)
  emit(case, "upper", fit$upper)
  tab <- summary(fit)$table
  emit(case, "median", tab[["median"]])
  emit(case, "median_lower", tab[[grep("LCL$", names(tab))]])
  emit(case, "median_upper", tab[[grep("UCL$", names(tab))]])
}

one <- function(name, data, conf.type, conf.int = 0.95) {
  fit <- survfit(Surv(time, event) ~ 1, data = data, conf.type = conf.type, conf.int = conf.int)
  emit_fit(paste(name, conf.type, sep = "/"), fit)
}

# by group: one case per level, "<name>=<level>/<conf.type>", from the stratified fit
by <- function(name, data, var, conf.type) {
  data$g <- data[[var]]
  fit <- survfit(Surv(time, event) ~ g, data = data, conf.type = conf.type)
  levels <- sort(unique(data$g))
  for (i in seq_along(levels)) emit_fit(sprintf("%s=%s/%s", name, levels[i], conf.type), fit[i])
}

# the small constructed datasets go into the fixture too, so the test uses R's rows
for (nm in c("flat", "flat_end", "all_censored")) {
  d <- get(nm)
  emit(paste0(nm, "/input"), "time", d$time)
  emit(paste0(nm, "/input"), "event", d$event)
}

for (ct in c("log", "log-log", "plain")) {
  one("lung", lung, ct)
  by("lung_sex", lung, "sex", ct)
  by("veteran_trt", veteran, "trt", ct)
  one("flat", flat, ct)
  one("flat_end", flat_end, ct)
  one("all_censored", all_censored, ct)
}
# alpha other than 0.05
one("lung90", lung, "log-log", conf.int = 0.90)
one("lung90", lung, "log", conf.int = 0.90)

write_fixture("km", pkgs = c("survival"))
