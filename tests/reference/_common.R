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
