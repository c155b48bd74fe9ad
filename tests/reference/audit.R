# Reference for src/failpattern/study/audit.py (tests/test_audit.py): the Stanford heart
# transplant data (survival::jasa), the textbook immortal-time example, analysed as the
# methods audit does: transplant fixed at acceptance (naive), transplant as a time-dependent
# covariate from the day of transplant (tmerge; coxph on (tstart, tstop]), landmark analyses,
# and the Simon-Makuch curves (survfit on the split rows by current treatment).
# The input columns are written into the fixture too, so Python reads the rows R used.
# Usage: cd tests/reference && Rscript audit.R .
source("_common.R")
suppressPackageStartupMessages(library(survival))

j <- jasa
time <- as.numeric(j$fu.date - j$accept.dt)
time[time == 0] <- 0.5  # a death on the day of acceptance, as survival's jasa1 (no empty interval)
wait <- as.numeric(j$tx.date - j$accept.dt)  # NA: never transplanted
d <- data.frame(id = seq_len(nrow(j)), time = time, event = j$fustat, tx = j$transplant, wait = wait)
emit("jasa", "time", d$time)
emit("jasa", "event", d$event)
emit("jasa", "treated", d$tx)
emit("jasa", "start_of_treatment", d$wait)

# Fits are converged to 1e-12 (coxph.control) so that the fixture is the maximum itself, not
# wherever R's default stopping rule (loglik change below 1e-9 relative) left it.
tight <- coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100)

emit_cox <- function(case, fit) {
  s <- summary(fit)
  emit(case, "coef", coef(fit))
  emit(case, "se", sqrt(diag(fit$var)))
  emit(case, "hr_lower", s$conf.int[, "lower .95"])
  emit(case, "hr_upper", s$conf.int[, "upper .95"])
  emit(case, "p", s$coefficients[, "Pr(>|z|)"])
  emit(case, "score_p", s$sctest[["pvalue"]])
}

# naive: treatment fixed at time zero
emit_cox("naive", coxph(Surv(time, event) ~ tx, data = d, ties = "efron", control = tight))
emit("naive", "logrank_p", survdiff(Surv(time, event) ~ tx, data = d)$pvalue)

# time-dependent: tmerge splits each follow-up at the transplant (a tdc at or after the end of
# follow-up is ignored; one at or before its start applies from the start)
base <- d[, c("id", "time", "event")]
s <- tmerge(base, base, id = id, death = event(time, event))
s <- tmerge(s, d, id = id, treated = tdc(wait))
emit("split", "n_rows", nrow(s))
emit("split", "start", s$tstart)
emit("split", "stop", s$tstop)
emit("split", "event", s$death)
emit("split", "treated", s$treated)
emit_cox("time_dependent", coxph(Surv(tstart, tstop, death) ~ treated, data = s, ties = "efron", control = tight))

# Simon-Makuch: Kaplan-Meier on the split rows by current treatment (delayed entry)
sm <- survfit(Surv(tstart, tstop, death) ~ treated, data = s)
for (k in 0:1) {
  f <- sm[k + 1]
  emit(paste0("simon_makuch/", k), "time", f$time)
  emit(paste0("simon_makuch/", k), "n_risk", f$n.risk)
  emit(paste0("simon_makuch/", k), "surv", f$surv)
}

# landmarks (days from acceptance): patients still followed, by treatment begun by then
for (lm in c(30, 90)) {
  keep <- d$time > lm
  l <- data.frame(t = d$time[keep] - lm, e = d$event[keep],
                  g = as.integer(d$tx[keep] == 1 & !is.na(d$wait[keep]) & d$wait[keep] <= lm))
  case <- paste0("landmark/", lm)
  emit(case, "n", nrow(l))
  emit(case, "n_treated", sum(l$g))
  emit_cox(case, coxph(Surv(t, e) ~ g, data = l, ties = "efron", control = tight))
  emit(case, "logrank_p", survdiff(Surv(t, e) ~ g, data = l)$pvalue)
}
write_fixture("audit")
