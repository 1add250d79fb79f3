// State layer: see StateStore.swift
