# Shared helpers for the reference scripts. Each script sources this file,
# calls emit() for every value it computes, then write_fixture("<name>").
# Fixtures are long-format CSV: case, quantity, i (1-based position), value
# printed with 17 significant digits, so Python can compare to 1e-12.
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1) args[1] else "."
data_dir <- if (length(args) >= 2) args[2] else file.path(out_dir, "datasets")

.rows <- new.env()
.rows$case <- character(0); .rows$quantity <- character(0)
.rows$i <- integer(0); .rows$value <- character(0)

emit <- function(case, quantity, values) {
  values <- as.numeric(values)
  n <- length(values)
  .rows$case <- c(.rows$case, rep(case, n))
  .rows$quantity <- c(.rows$quantity, rep(quantity, n))
  .rows$i <- c(.rows$i, seq_len(n))
  .rows$value <- c(.rows$value, ifelse(is.na(values), "NA", sprintf("%.17g", values)))
}

versions <- function(pkgs) {
  paste0(R.version.string, "; ",
         paste(sapply(pkgs, function(p) paste(p, as.character(packageVersion(p)))), collapse = "; "))
}

write_fixture <- function(name, pkgs = c("survival")) {
  path <- file.path(out_dir, paste0(name, ".csv"))
  con <- file(path, "w")
  writeLines(paste0("# produced by tests/reference/", name, ".R with ", versions(pkgs)), con)
  df <- data.frame(case = .rows$case, quantity = .rows$quantity, i = .rows$i, value = .rows$value)
  write.csv(df, con, row.names = FALSE, quote = FALSE)
  close(con)
}

read_dataset <- function(name) read.csv(file.path(data_dir, paste0(name, ".csv")))

# A coxph fit's coefficients, SEs (robust and naive), tests, log-likelihoods and covariance
# (cox.R, cox_exact.R).
emit_coxph <- function(case, fit) {
  # coxph's (start, stop] exact fit (agexact.fit) returns no class in survival 3.5-3
  if (!inherits(fit, "coxph")) class(fit) <- "coxph"
  s <- summary(fit)
  cf <- s$coefficients
  ci <- s$conf.int
  emit(case, "coef", cf[, "coef"])
  robust <- "robust se" %in% colnames(cf)
  emit(case, "se", cf[, if (robust) "robust se" else "se(coef)"])
  if (robust) {
    emit(case, "naive_se", cf[, "se(coef)"])
    emit(case, "naive_covariance", as.vector(fit$naive.var))
  }
  emit(case, "z", cf[, "z"])
  emit(case, "p", cf[, "Pr(>|z|)"])
  emit(case, "hr", ci[, "exp(coef)"])
  emit(case, "hr_lower", ci[, "lower .95"])
  emit(case, "hr_upper", ci[, "upper .95"])
  emit(case, "loglik", fit$loglik)
  df <- length(coef(fit))
  lr <- -2 * (fit$loglik[1] - fit$loglik[2])
  emit(case, "lr", c(lr, df, pchisq(lr, df, lower.tail = FALSE)))
  emit(case, "score", c(fit$score, df, pchisq(fit$score, df, lower.tail = FALSE)))
  wald <- as.vector(fit$wald.test)
  emit(case, "wald", c(wald, df, pchisq(wald, df, lower.tail = FALSE)))
  emit(case, "n", fit$n)
  emit(case, "nevent", fit$nevent)
  emit(case, "iter", fit$iter)
  emit(case, "covariance", as.vector(fit$var))
}
