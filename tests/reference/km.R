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
  # std.err is of log S (logse) except for R's robust variance (fractional weights)
  emit(case, "se", if (fit$logse) fit$std.err * fit$surv else fit$std.err)
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

# Counting-process data and case weights: survfit(Surv(entry, time, event) ~ 1, weights = w),
# R's defaults otherwise (whole-number weights: Greenwood on weighted counts; any
# fractional weight: robust infinitesimal-jackknife SE, one cluster per row).
# Small left-truncated set: entry 2 ties the event time 2 (row not yet at risk there),
# entry 3 ties the censoring at 3; weights with a 0 and fractions.
trunc <- data.frame(entry = c(0, 0, 1, 2, 3, 0.5, 4, 2, 0),
                    time = c(2, 5, 3, 6, 4, 7, 8, 3, 4),
                    event = c(1, 0, 1, 1, 0, 1, 1, 0, 1),
                    w = c(1, 2, 1, 3, 0, 2, 1, 2, 1),
                    fw = c(1.5, 2, 1, 3, 0, 2, 0.5, 0.25, 1))
for (q in names(trunc)) emit("trunc/input", q, trunc[[q]])
# mgus2 on the age scale in months (whole numbers, so no time-fix merging): entry at
# diagnosis, event = progression or death
mgus2 <- read_dataset("mgus2")
mgus2_age <- data.frame(entry = mgus2$age * 12, time = mgus2$age * 12 + mgus2$time,
                        event = as.integer(mgus2$cause > 0))
# lung with whole-number and with fractional case weights, by row number
lung$w <- 1 + seq_len(nrow(lung)) %% 3
lung$fw <- (1 + seq_len(nrow(lung)) %% 4) / 2
emit("lung/input", "w", lung$w)
emit("lung/input", "fw", lung$fw)

cp <- function(name, data, conf.type, wt = NULL) {
  data$wt <- if (is.null(wt)) rep(1, nrow(data)) else data[[wt]]
  fit <- if (is.null(wt)) {
    survfit(Surv(entry, time, event) ~ 1, data = data, conf.type = conf.type)
  } else if ("entry" %in% names(data)) {
    survfit(Surv(entry, time, event) ~ 1, data = data, weights = wt, conf.type = conf.type)
  } else {
    survfit(Surv(time, event) ~ 1, data = data, weights = wt, conf.type = conf.type)
  }
  emit_fit(paste(name, conf.type, sep = "/"), fit)
}
for (ct in c("log", "log-log")) {
  cp("trunc", trunc, ct)
  cp("trunc_w", trunc, ct, "w")
  cp("trunc_fw", trunc, ct, "fw")
  cp("mgus2_age", mgus2_age, ct)
  cp("lung_w", lung, ct, "w")
  cp("lung_fw", lung, ct, "fw")
}

write_fixture("km", pkgs = c("survival"))
